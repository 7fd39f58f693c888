"""archivist-cli: commands, messages and exit codes as a Unix user expects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from samples import PROSE, make_pdf

from archivist.cli import main


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for i, text in enumerate(PROSE):
        (root / f"note{i}.txt").write_text(text)
    make_pdf(root / "pump.pdf", ["Intro page.", "The pump needs oil every 200 hours."])
    return root


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_search_status_remove(capsys, corpus: Path):
    code, out, _ = run(capsys, "ingest", str(corpus), "-c", "Manuals")
    assert code == 0
    assert "6 indexed" in out and "0 failed" in out and "'Manuals'" in out

    code, out, _ = run(capsys, "search", "how often to oil the pump", "-c", "Manuals", "-k", "2")
    assert code == 0
    assert out.startswith("[1] pump.pdf, page 2")
    assert "every 200 hours" in out

    code, out, _ = run(capsys, "status")
    assert code == 0 and out.startswith("Manuals: 6 documents")

    code, out, _ = run(capsys, "status", "-c", "Manuals")
    assert "indexed  " in out and "pump.pdf" in out and "2 pages" in out

    code, out, _ = run(capsys, "ingest", str(corpus), "-c", "Manuals")
    assert code == 0 and "0 indexed" in out and "6 unchanged" in out

    code, out, _ = run(capsys, "remove", str(corpus / "pump.pdf"), "-c", "Manuals")
    assert code == 0 and "removed" in out
    code, out, err = run(capsys, "remove", str(corpus / "pump.pdf"), "-c", "Manuals")
    assert code == 1 and "nothing indexed" in err


def test_failures_are_listed_and_exit_1(capsys, corpus: Path):
    make_pdf(corpus / "locked.pdf", ["secret"], user_password="pw")
    (corpus / "blank.txt").write_text("")
    code, out, _ = run(capsys, "ingest", str(corpus))
    assert code == 1
    assert "failed   " in out and "locked.pdf: password-protected, skipped" in out
    assert "blank.txt: the file is empty" in out
    assert "6 indexed" in out and "2 failed" in out


def test_missing_path_and_unknown_collection(capsys, tmp_path: Path):
    code, _, err = run(capsys, "ingest", str(tmp_path / "nope"))
    assert code == 1 and "no such file or folder" in err
    code, _, err = run(capsys, "search", "anything", "-c", "Nowhere")
    assert code == 1 and "There is no collection named 'Nowhere'" in err


def test_usage_error_exit_2():
    result = subprocess.run([sys.executable, "-m", "archivist.cli", "frobnicate"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_checkup_saves_questions_runs_them_and_compares(capsys, corpus: Path):
    assert run(capsys, "ingest", str(corpus), "-c", "Manuals")[0] == 0
    code, _, err = run(capsys, "checkup", "-c", "Manuals")
    assert code == 1 and "no test questions" in err
    assert run(capsys, "checkup", "-c", "Manuals", "--add", "How often does the pump need oil?",
               "--expect", "pump.pdf", "--passage", "every 200 hours")[0] == 0
    assert run(capsys, "checkup", "-c", "Manuals", "--add", "Where did the negotiators of 1648 meet?",
               "--expect", "note2.txt")[0] == 0
    assert run(capsys, "checkup", "-c", "Manuals", "--add", "Who owns the bakery?", "--expect", "bakery.txt")[0] == 0
    code, out, _ = run(capsys, "checkup", "-c", "Manuals")
    assert code == 1  # one question's document is not in the collection
    assert "#1  How often does the pump need oil?" in out and "miss  Who owns the bakery?" in out
    assert "hit rate at 5: 67% (2 of 3)" in out

    (corpus / "bakery.txt").write_text("The bakery on Mill Street is owned by Ana Ruiz since 2019.")
    assert run(capsys, "ingest", str(corpus), "-c", "Manuals")[0] == 0
    code, out, _ = run(capsys, "checkup", "-c", "Manuals")
    assert code == 0 and "hit rate at 5: 100% (3 of 3), +33% since" in out
    assert "now found:  Who owns the bakery?" in out
    code, out, _ = run(capsys, "checkup", "-c", "Manuals", "--list")
    assert code == 0 and out.count("#") == 3


@pytest.mark.parametrize("how", ["SIGSEGV", "SIGKILL"])
def test_a_crashed_engine_ends_the_answer_with_a_plain_message(corpus: Path, tmp_path: Path, how: str):
    import os
    import signal
    import threading

    import psutil

    env = dict(os.environ, ARCHIVIST_DATA_DIR=str(tmp_path / "data"))
    cli = [sys.executable, "-m", "archivist.cli"]
    subprocess.run([*cli, "ingest", str(corpus), "-c", "Manuals"], env=env, check=True, capture_output=True)
    ask = subprocess.Popen([*cli, "ask", "Write a long essay on how the pump is oiled.", "-c", "Manuals", "--no-cache"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = ask.stdout.read(1)  # the answer has started streaming
    engine = [p for p in psutil.Process(ask.pid).children() if "spawn_main" in " ".join(p.cmdline())]
    assert first and len(engine) == 1, (first, engine)
    os.kill(engine[0].pid, getattr(signal, how))
    drain = threading.Thread(target=ask.stdout.read)
    drain.start()
    err = ask.stderr.read().decode()
    assert ask.wait(60) == 1
    drain.join()
    number = getattr(signal, how).value
    assert f"archivist-cli: The model stopped unexpectedly (signal {number}" in err
    assert "Traceback" not in err


def test_a_collection_names_its_adapter(capsys, corpus: Path, tmp_path: Path):
    run(capsys, "ingest", str(corpus), "-c", "Manuals")
    code, out, _ = run(capsys, "adapter", "-c", "Manuals")
    assert code == 0 and out == "Manuals: no adapter\n"
    model = tmp_path / "not-an-adapter.gguf"
    model.write_bytes(b"nonsense")
    code, _, err = run(capsys, "adapter", str(model), "-c", "Manuals")
    assert code == 1 and "not a GGUF model file" in err
    code, _, err = run(capsys, "adapter", "-c", "Nope")
    assert code == 1 and "no collection named 'Nope'" in err


def test_ask_as_json_and_as_the_window_s_messages(capsys, corpus: Path):
    import json

    from rag.answering.ask import Answered, Retrieved
    from rag.service import codec

    assert run(capsys, "ingest", str(corpus), "-c", "Manuals")[0] == 0
    code, out, err = run(capsys, "ask", "How often does the pump need oil?", "-c", "Manuals", "--format", "json")
    assert code == 0, err
    answer = json.loads(out)
    assert answer["answer"] and answer["sources"] and answer["question"] == "How often does the pump need oil?"
    first = answer["sources"][0]
    assert {"number", "file", "page", "start", "end", "cited", "text"} <= set(first) and first["end"] > first["start"]
    for claim in answer["claims"]:  # every sentence with a claim, checked against what it cites
        assert answer["answer"][claim["start"]:claim["end"]].startswith(claim["sentence"][:3])
        assert claim["supported"] in (True, False, None) and (claim["supported"] or claim["problem"])

    code, out, err = run(capsys, "ask", "How often does the pump need oil?", "-c", "Manuals", "--format", "events")
    assert code == 0, err
    events = [codec.loads(line) for line in out.splitlines()]
    assert isinstance(events[0], Retrieved) and isinstance(events[-1], Answered)
    assert events[-1].result.sources[0].path.name in {"pump.pdf"} | {f"note{i}.txt" for i in range(5)}

    # As text: the sources are always listed (cited or only read), and the starter says what it is.
    code, out, err = run(capsys, "ask", "When was the pump manual written?", "-c", "Manuals", "--no-cache")
    assert code == 0, err
    assert "\nSources" in out and events[-1].result.sources[0].path.name in out
    assert "a small stand-in for gpt-oss-20b" in err and "; check each sentence against its source)" in err


def test_a_reader_that_goes_away_is_no_error(corpus: Path, tmp_path: Path):
    """`archivist-cli search … | head -1`: the pipe closes before the output is written."""
    assert main(["ingest", str(corpus), "-q"]) == 0
    cli = subprocess.Popen([sys.executable, "-m", "archivist.cli", "search", "pump oil"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    cli.stdout.close()  # before the command has loaded anything, let alone printed
    _, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err.decode()
    assert b"Traceback" not in err
