"""rosbags' bag writer, made to write what rosbag2 itself writes on ROS 2 kilted.

rosbags (pinned in requirements/ml.txt) records ``ros_distro: rosbags`` in the bag metadata and gives mcap channels
only ``offered_qos_profiles``. rosbag2 records the distro whose message definitions it used, and its mcap plugin
adds each channel's ``topic_type_hash`` (the RIHS01 type hash), which tools such as ``ros2 bag info`` and Foxglove
read to check that a recorded type matches the installed one. Our CDR comes from the kilted typestore
(``alpamayo_ros.interfaces.typestore``), so these bags say ``kilted``.

The subclasses below hook rosbags' storage plugins; they depend on rosbags internals of the pinned version
(checked by test/tools/test_bagio.py, which reads both fields back).
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import yaml
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import Channel, McapWriter, write_channel, write_string
from rosbags.rosbag2.storage_sqlite3 import Sqlite3Writer

ROS_DISTRO = "kilted"  # the distro of the typestore every bag of this package is written with
_INFO = "rosbag2_bagfile_information"


def _with_distro(serialized: str) -> str:
    """rosbag2 metadata YAML (the bag information mapping itself) with ros_distro set to ROS_DISTRO."""
    info = yaml.safe_load(serialized)
    info["ros_distro"] = ROS_DISTRO
    return yaml.safe_dump(info, sort_keys=False).strip()


class _McapWriter(McapWriter):  # type: ignore[misc]
    def add_connection(self, connection: Any, offered_qos_profiles: str) -> None:
        metadata = BytesIO()
        for key, value in (("offered_qos_profiles", offered_qos_profiles), ("topic_type_hash", connection.digest)):
            write_string(metadata, key)
            write_string(metadata, value)
        channel = Channel(
            connection.id,
            connection.msgtype,
            connection.topic,
            connection.ext.serialization_format,
            metadata.getvalue(),
        )
        self.channels.append(channel)
        self.channel_stats[connection.id] = 0
        write_channel(self.chunk.bio, channel, self.schemas)

    def close(self, version: int, metadata: str) -> None:
        super().close(version, _with_distro(metadata))


class _Sqlite3Writer(Sqlite3Writer):  # type: ignore[misc]
    def close(self, version: int, metadata: str) -> None:
        self.cursor.execute("UPDATE schema SET ros_distro = ?", (ROS_DISTRO,))
        super().close(version, _with_distro(metadata))


class KiltedWriter(Writer):  # type: ignore[misc]
    """A rosbags ``Writer`` whose bags carry ``ros_distro: kilted`` and mcap ``topic_type_hash`` like rosbag2's."""

    STORAGE_PLUGINS = {StoragePlugin.SQLITE3: _Sqlite3Writer, StoragePlugin.MCAP: _McapWriter}  # noqa: RUF012

    def close(self) -> None:
        super().close()
        path = Path(self.metapath)
        document = yaml.safe_load(path.read_text())
        document[_INFO]["ros_distro"] = ROS_DISTRO
        path.write_text(yaml.safe_dump(document, sort_keys=False))
