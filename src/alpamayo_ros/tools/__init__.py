"""Tools around the node: scenario generation, bag replay (play/record), open-loop evaluation and the demo.

Tools import rclpy and torch only inside the functions that need them, so generating or scoring a bag works
without a ROS runtime loaded.
"""
