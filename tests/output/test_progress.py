"""Progress in logs: outside a terminal a slow run logs progress lines while it runs; in a
terminal the bar fits 80 columns with its times intact."""

from __future__ import annotations

import io
import logging
import re
import subprocess

from tests.api.conftest import NUM_ROWS, PROMPT, TOOLCALL_DATA
from tests.conftest import script
from tests.servers.openai_stub import StubServer

LINE = re.compile(r"progress (?:done )?(\d+)/(\d+) \((\d+)%\) ok (\d+) failed (\d+) retrying (\d+)(?: [\w ]+?)? \| [\d.]+/s \| elapsed \d:\d\d:\d\d \| ETA (?:\d:\d\d:\d\d|-:--:--)")


def test_a_slow_run_logs_progress_lines_before_it_ends(tmp_path):
    import os

    run_dir = tmp_path / "run"
    log_path = tmp_path / "nohup.out"
    with StubServer(model="m", latency=0.1) as server:  # one row at a time: >= NUM_ROWS / 10 s
        args = ["+experiment=toolcall", "backend=api", f"backend.base_url={server.base_url}", "backend.model=m", "backend.concurrency=1",
                "backend.hedge=false", "backend.adaptive_concurrency=false", f"data.path={TOOLCALL_DATA}", f"prompt.file={PROMPT}",
                "cache.enabled=false", "report.excel=false", f"hydra.run.dir={run_dir}"]  # fmt: skip
        env = {**os.environ, "EVALKIT_PROGRESS_INTERVAL": "0.2", "COLUMNS": "80", "HF_HUB_OFFLINE": "1"}
        env.pop("EVALKIT_VERBOSE", None)
        with log_path.open("w") as log:  # like nohup: stdout and stderr into one file
            proc = subprocess.run([script("evalkit"), *args], stdout=log, stderr=subprocess.STDOUT, env=env, timeout=300)
    assert proc.returncode == 0, log_path.read_text()
    for text in (log_path.read_text(encoding="utf-8"), (run_dir / "run.log").read_text(encoding="utf-8")):
        lines = [m for m in (LINE.search(line) for line in text.splitlines()) if m]
        midway = [m for m in lines if int(m.group(1)) < int(m.group(2))]
        assert midway, text  # written while samples were still outstanding
        done = [int(m.group(1)) for m in midway]
        assert done == sorted(done) and all(int(m.group(2)) == NUM_ROWS for m in lines)
        assert f"progress done {NUM_ROWS}/{NUM_ROWS} (100%) ok {NUM_ROWS} failed 0" in text
        # every progress line comes before the results table
        assert text.index("progress done") > text.index(midway[-1].group(0))
    assert not re.search(r"\d+% +━", log_path.read_text(encoding="utf-8"))  # no bar drawn into a file


def test_log_lines_carry_the_status_a_backend_publishes(caplog, monkeypatch):
    from evalkit.progress import RunProgress

    monkeypatch.setenv("EVALKIT_PROGRESS_INTERVAL", "1000")  # only the step lines
    caplog.set_level(logging.INFO, logger="evalkit")
    with RunProgress(20, mode="log") as progress:
        progress.update_status(concurrency=48, retrying=3, hedged=1)
        progress._last_log -= 5  # as if the last line were five seconds old
        progress.advance(n=2)
        progress.advance(ok=False)
        progress.update_status(retrying=0, hedged=None)
    messages = [r.getMessage() for r in caplog.records if "progress" in r.getMessage()]
    assert messages[0].startswith("progress 2/20 (10%) ok 2 failed 0 retrying 3 concurrency 48 hedged 1 | ")
    assert messages[-1].startswith("progress done 3/20 (15%) ok 2 failed 1 retrying 0 concurrency 48 | ")
    assert all(LINE.search(m) for m in messages)


def test_terminal_bar_fits_80_columns_with_elapsed_and_eta():
    from rich.console import Console

    from evalkit.progress import RunProgress

    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system=None)
    with RunProgress(123456, console=console) as progress:
        assert progress.mode == "bar"
        progress.advance(n=50000)
        progress.advance(ok=False, n=17)
        progress.update_status(concurrency=48, retrying=3, hedged=1)
    final = buf.getvalue().split("\r")[-1].split("\n")[0].replace("\x1b[2K", "")
    assert len(final) <= 80, final
    assert re.search(r"50017/123456 ok 50000 fail 17 retry 3 .*\d:\d\d:\d\d ETA \S+$", final), final
