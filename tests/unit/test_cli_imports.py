"""The service's command line keeps the development tools off its import path."""

import subprocess
import sys


def imported_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return set(out.split())


def test_importing_the_cli_does_not_import_the_devtools() -> None:
    loaded = imported_after("import streams.cli.main")
    assert not {name for name in loaded if name.startswith("streams.devtools")}


def test_building_the_cli_for_a_service_command_does_not_import_the_devtools() -> None:
    statement = (
        "import argparse\n"
        "from streams.cli.main import command_groups\n"
        "commands = argparse.ArgumentParser().add_subparsers()\n"
        "for add in command_groups('worker'):\n"
        "    add(commands)"
    )
    loaded = imported_after(statement)
    assert not {name for name in loaded if name.startswith("streams.devtools")}


def test_the_bench_command_loads_its_own_parser() -> None:
    loaded = imported_after("from streams.cli.main import command_groups\ncommand_groups('bench')")
    assert "streams.devtools.bench" in loaded
