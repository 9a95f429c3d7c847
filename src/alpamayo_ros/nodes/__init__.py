"""ROS 2 nodes of the package (rclpy wiring over alpamayo_ros.core)."""
