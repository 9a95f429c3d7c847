"""One source of truth across the package's build files (package.xml, setup.py, CMakeLists.txt, msg/)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import alpamayo_ros
from alpamayo_ros.cli import SUBCOMMANDS, build_parser, main
from alpamayo_ros.interfaces import MESSAGE_NAMES

from support import REPO


def test_versions_agree() -> None:
    xml_version = ET.parse(REPO / "package.xml").getroot().findtext("version")
    setup_version = re.search(r'version="([^"]+)"', (REPO / "setup.py").read_text())
    assert setup_version is not None
    assert xml_version == setup_version.group(1) == alpamayo_ros.__version__


def test_every_message_file_is_generated_and_known() -> None:
    on_disk = sorted(p.stem for p in (REPO / "msg").glob("*.msg"))
    cmake = (REPO / "CMakeLists.txt").read_text()
    listed = sorted(re.findall(r'"msg/(\w+)\.msg"', cmake))
    assert on_disk == listed == sorted(MESSAGE_NAMES)


def test_message_fields_are_documented() -> None:
    """Every field line in every .msg carries a comment (on the line or in the comment block above it)."""
    for path in (REPO / "msg").glob("*.msg"):
        previous = ""
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                assert "#" in stripped or previous.startswith("#"), f"{path.name}: undocumented field {stripped!r}"
            previous = stripped


def test_package_xml_declares_interface_generation() -> None:
    root = ET.parse(REPO / "package.xml").getroot()
    assert root.get("format") == "3"
    assert "rosidl_default_generators" in [e.text for e in root.iter("buildtool_depend")]
    assert "rosidl_interface_packages" in [e.text for e in root.iter("member_of_group")]
    assert root.findtext("export/build_type") == "ament_cmake"


def test_cli_lists_every_subcommand(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 2
    help_text = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in help_text
    assert build_parser().prog == "alpamayo-ros"


def test_cli_rejects_unknown_command(capsys) -> None:  # type: ignore[no-untyped-def]
    try:
        code = main(["fly"])
    except SystemExit as exc:
        code = int(exc.code or 0)
    assert code == 2
    assert "invalid choice: 'fly'" in capsys.readouterr().err


def test_readme_parameter_table_is_generated_from_params() -> None:
    from alpamayo_ros.core.params import render_markdown

    readme = (REPO / "README.md").read_text()
    begin = readme.index("<!-- BEGIN PARAMETERS")
    table = readme[readme.index("\n", begin) + 1 : readme.index("<!-- END PARAMETERS -->")]
    assert table == render_markdown(), "README parameter table is stale: python -m alpamayo_ros.core.params markdown"
