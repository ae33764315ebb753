"""The store's commands run as a user runs them: bad input is one line, and nothing is created."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pytest

from payamak_analytics.store import Store


def payamak(*args: str, cwd, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYAMAK_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "payamak_analytics.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=60,
    )


def files_under(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def assert_one_line_error(result, status: int, *words: str) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "a-folder.duckdb").mkdir()
    (tmp_path / "notes.txt").write_text("not a database\n")
    other = duckdb.connect(str(tmp_path / "other.duckdb"))
    other.execute("CREATE TABLE customers (id INTEGER)")
    other.close()
    return tmp_path


NOT_A_STORE = {
    "a-folder.duckdb": ("is a folder",),
    "notes.txt": ("is not a DuckDB file",),
    "other.duckdb": ("of something else", "customers"),
    "notes.txt/store.duckdb": ("which is a file",),
}
CASES = [(("sync",), db) for db in NOT_A_STORE] + [
    (("export", "--parquet", "out"), "other.duckdb"),
    (("export", "--parquet", "out"), "notes.txt/store.duckdb"),
    (("campaign", "status", "x"), "a-folder.duckdb"),
    (("campaign", "status", "x"), "notes.txt"),
]


@pytest.mark.parametrize("command, db", CASES)
def test_a_db_that_is_not_a_store_is_refused_and_nothing_is_created(folder, command, db):
    words = NOT_A_STORE[db]
    before = files_under(folder)
    env = {
        "PAYAMAK_USERNAME": "demo",
        "PAYAMAK_PASSWORD": "demo",
        "PAYAMAK_WSDL": "bundled",
        "PAYAMAK_ENDPOINT": "http://127.0.0.1:9/SendService.svc",
    }
    result = payamak(*command, "--db", str(folder / db), cwd=folder, env=env)
    assert_one_line_error(result, 1, *words)
    assert files_under(folder) == before
    with duckdb.connect(str(folder / "other.duckdb")) as other:
        assert other.execute("SELECT table_name FROM information_schema.tables").fetchall() == [("customers",)]


@pytest.mark.parametrize(
    "args, status, words",
    [
        (("sync", "--workers", "0"), 2, ("--workers", "from 1 to 64")),
        (("sync", "--workers", "-3"), 2, ("--workers",)),
        (("sync", "--since", "notadate"), 1, ("notadate", "Jalali", "7d")),
        (("sync", "--give-up-after", "0"), 2, ("--give-up-after",)),
        # a line the API refuses was refused only once the store was created (files left behind)
        (("sync", "--line", "abc"), 1, ("'abc' is not a sender line",)),
        (("sync", "--line", "10002188", "--line", "-5"), 1, ("'-5' is not a sender line",)),
        # an empty --since (a shell variable left unset) read as none: the whole history, silently
        (("sync", "--since", ""), 1, ("''", "Jalali", "7d")),
    ],
)
def test_bad_sync_options_are_one_line_and_create_nothing(tmp_path, args, status, words):
    # the bundled contract and an address nothing answers: all that could create the store runs
    env = {"PAYAMAK_WSDL": "bundled", "PAYAMAK_ENDPOINT": "http://127.0.0.1:9/SendService.svc"}
    result = payamak(*args, cwd=tmp_path, env={"PAYAMAK_USERNAME": "demo", "PAYAMAK_PASSWORD": "demo", **env})
    assert_one_line_error(result, status, *words)
    assert files_under(tmp_path) == set()


def test_export_onto_an_existing_file_is_refused(tmp_path):
    Store(tmp_path / "p.duckdb")
    (tmp_path / "out.parquet").write_bytes(b"PAR1")
    result = payamak("export", "--parquet", "out.parquet", "--db", "p.duckdb", cwd=tmp_path)
    assert_one_line_error(result, 1, "out.parquet is a file")
    assert (tmp_path / "out.parquet").read_bytes() == b"PAR1"


def test_reading_commands_need_no_credentials_and_find_the_store_in_payamak_store(tmp_path):
    store = Store(tmp_path / "elsewhere.duckdb")
    store.create_campaign(
        {
            "name": "spring",
            "line": "50001234",
            "text": "hello",
            "flash": False,
            "recipients": 2,
            "invalid_numbers": 0,
            "duplicates": 0,
            "blacklisted": None,
            "parts": 1,
            "encoding": "GSM-7",
            "created_at": __import__("datetime").datetime.now().astimezone(),
        },
        [["09120000001", "09120000002"]],
    )
    env = {"PAYAMAK_STORE": str(tmp_path / "elsewhere.duckdb")}
    status = payamak("campaign", "status", "spring", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    assert "planned" in status.stdout and "2" in status.stdout
    exported = payamak("export", "--parquet", "out", cwd=tmp_path, env=env)
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "out" / "sync_runs.parquet").exists()
    missing = payamak("campaign", "status", "nope", cwd=tmp_path, env=env)
    assert_one_line_error(missing, 1, "No campaign named 'nope'")
    assert not (tmp_path / "data").exists()  # the default path was never used


@pytest.mark.parametrize(
    "content, words",
    [
        (None, ("cannot be read",)),
        (b"", ("holds no numbers",)),
        (b"phone\n\n", ("holds no numbers",)),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ("not UTF-8",)),
        (b"0912\x001234567\n", ("binary",)),
    ],
)
def test_campaign_send_refuses_a_bad_numbers_file_before_anything(tmp_path, content, words):
    csv = tmp_path / "numbers.csv"
    if content is not None:
        csv.write_bytes(content)
    before = files_under(tmp_path)
    result = payamak(
        "campaign",
        "send",
        "--name",
        "n",
        "--from",
        "50001234",
        "--numbers",
        str(csv),
        "--text",
        "hi",
        "--db",
        str(tmp_path / "p.duckdb"),
        cwd=tmp_path,
    )
    assert_one_line_error(result, 1, *words)
    assert files_under(tmp_path) == before


def test_campaign_send_refuses_a_control_character_before_anything(tmp_path):
    csv = tmp_path / "numbers.csv"
    csv.write_text("09121234567\n")
    result = payamak(
        "campaign",
        "send",
        "--name",
        "n",
        "--from",
        "50001234",
        "--numbers",
        str(csv),
        "--text",
        "hi\x01there",
        "--db",
        str(tmp_path / "p.duckdb"),
        cwd=tmp_path,
    )
    assert_one_line_error(result, 1, "U+0001")
    assert files_under(tmp_path) == {"numbers.csv"}
