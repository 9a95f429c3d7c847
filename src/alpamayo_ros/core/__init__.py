"""Pure logic: synchronisation, ego history, conversions, decisions. No rclpy, no torch."""
