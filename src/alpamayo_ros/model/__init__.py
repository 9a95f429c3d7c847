"""Alpamayo-R1 in PyTorch: config, offline tokenizer/processor, model, official-checkpoint loader, inference.

Import ``alpamayo_ros.runtime.torch_backend`` for the node-facing ``load_torch_model``; nothing here imports rclpy.
"""
