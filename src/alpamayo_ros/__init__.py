"""alpamayo_ros: the Alpamayo reasoning driving model on ROS 2.

Layers: ``nodes`` (rclpy wiring), ``core`` (pure logic, no rclpy, no torch), ``model`` / ``runtime``
(torch / onnxruntime / TensorRT, never rclpy) and ``tools`` (synth, replay, evaluate, demo).
"""

from pkgutil import extend_path

# rosidl generates ``alpamayo_ros.msg`` into the interpreter's site-packages; in the editable venv flow the
# sources live elsewhere. Extending __path__ lets one import name serve both halves (colcon merges them on disk).
__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
