"""pip-installable Python side of alpamayo_ros (console scripts); colcon builds the same tree with CMake."""

from setuptools import find_namespace_packages, setup

setup(
    name="alpamayo_ros",
    version="0.1.0",
    description="Alpamayo reasoning VLA driving model on ROS 2: seven cameras + odometry in, Path + reasoning out",
    license="Apache-2.0",
    python_requires=">=3.10",
    package_dir={"": "src"},
    # namespace discovery: resources/ (Fast DDS profile, shipped model) holds data folders without __init__.py
    packages=find_namespace_packages("src", include=["alpamayo_ros", "alpamayo_ros.*"]),
    include_package_data=True,
    package_data={"alpamayo_ros": ["py.typed", "resources/*", "resources/**/*"]},
    # `pip install .[fleet]`: Ray for `--executor ray` of evaluate and sim, ROS's domain_coordinator for sim's DDS
    # workers; the same pins as requirements/fleet.txt (a test holds them equal).
    extras_require={"fleet": ["ray[client]==2.60.0", "ros-domain-coordinator==0.12.0"]},
    entry_points={
        "console_scripts": [
            "alpamayo-ros = alpamayo_ros.cli:main",
            "alpamayo_node = alpamayo_ros.nodes.node_main:main",
        ],
    },
)
