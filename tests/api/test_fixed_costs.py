"""Fixed costs that every run or command pays: what ``--help`` and the metrics' base import.

No timings: each test checks *what* is imported (or not) and that the shortcut gives the same
answer as the long way.
"""

from __future__ import annotations

import json
import subprocess
import sys


def _run(code: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_lists_what_hydra_lists_without_importing_hydra():
    listed = _run(
        "import json, sys\n"
        "from evalkit.cli import help_text\n"
        "from evalkit.cli_help import group_options\n"
        "text = help_text()\n"
        "print(json.dumps({'groups': group_options(), 'loaded': sorted(m for m in ('hydra', 'omegaconf', 'torch', 'aiohttp') if m in sys.modules),"
        " 'text': text}))\n"
    )
    assert listed["loaded"] == []
    hydra = _run(
        "import json\n"
        "from hydra import initialize_config_module\n"
        "from hydra.core.global_hydra import GlobalHydra\n"
        "from evalkit.resolvers import install_hydra_integration\n"
        "install_hydra_integration()\n"
        "with initialize_config_module('evalkit.conf', version_base='1.3'):\n"
        "    loader = GlobalHydra.instance().config_loader()\n"
        "    groups = [g for g in loader.list_groups('') if g != 'hydra'] + ['hydra/launcher']\n"
        "    print(json.dumps({g: sorted(loader.get_group_options(g)) for g in groups}))\n"
    )
    assert listed["groups"] == hydra
    assert "joblib" in hydra["hydra/launcher"] and "toolcall" in hydra["experiment"]
    for group, options in hydra.items():
        if options:
            assert f"options: {', '.join(options)}" in listed["text"], group


def test_torchmetrics_loads_without_transformers_or_scipy_signal_which_still_work():
    state = _run(
        "import json, sys\n"
        "from evalkit.warmup import import_torchmetrics\n"
        "import_torchmetrics()\n"
        "before = sorted(m for m in ('transformers', 'scipy.signal', 'scipy.stats') if type(sys.modules.get(m)).__name__ == 'module')\n"
        "import scipy.signal\n"
        "from scipy.signal import windows\n"
        "import torchmetrics.functional.audio as audio\n"
        "print(json.dumps({'before': before, 'hamming': [round(float(x), 4) for x in scipy.signal.hamming(3)],"
        " 'same': audio.scipy.signal is scipy.signal is sys.modules['scipy.signal'], 'windows': windows.hamming is scipy.signal.hamming}))\n"
    )
    assert state["before"] == []  # neither imported (scipy.signal is a lazy module until used)
    assert state["hamming"] == [0.08, 1.0, 0.08] and state["same"] and state["windows"]


def test_openpyxl_loads_without_pillow_which_still_embeds_pictures(tmp_path):
    png, book = tmp_path / "dot.png", tmp_path / "with_picture.xlsx"
    result = _run(
        "import json, sys, zipfile\n"
        "from evalkit.excel import new_workbook, save_workbook\n"
        "wb = new_workbook()\n"
        "wb.active.append(['figure', 0.5])\n"
        "before = 'PIL' in sys.modules or 'PIL.Image' in sys.modules\n"
        f"save_workbook(wb, {str(tmp_path / 'plain.xlsx')!r})\n"
        "after_save = 'PIL.Image' in sys.modules\n"
        "from PIL import Image\n"
        f"Image.new('RGB', (4, 4), 'red').save({str(png)!r})\n"
        "from openpyxl.drawing.image import Image as Picture\n"
        f"wb.active.add_image(Picture({str(png)!r}), 'C1')\n"
        f"save_workbook(wb, {str(book)!r})\n"
        f"media = [n for n in zipfile.ZipFile({str(book)!r}).namelist() if n.startswith('xl/media/')]\n"
        "print(json.dumps({'before': before, 'after_save': after_save, 'media': media}))\n"
    )
    assert result["before"] is False and result["after_save"] is False  # a workbook without pictures never loads Pillow
    assert result["media"] == ["xl/media/image1.png"]  # and pictures still work once one is added
