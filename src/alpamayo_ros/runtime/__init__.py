"""Model runtimes behind the node's DrivingModel interface (torch, onnxruntime, tensorrt). Never imports rclpy."""
