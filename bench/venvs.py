"""Third-party P4Runtime libraries in venvs of their own (outside the repo, reused).

finsy's venv is the one tests/test_finsy_client.py makes (same place, same pin,
same lock); p4runtime-shell gets one next to it.  Either is skipped, with the
reason, when pip cannot install it (no PyPI, no wheel for this Python).
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
LIBRARIES = {  # name -> (pip requirement, import check, cache directory)
    "finsy": ("finsy==0.30.0", "import finsy, sys; sys.exit(finsy.__version__ != '0.30.0')",
              CACHE / "p4lb-test-finsy"),
    "p4runtime-shell": ("p4runtime-shell==0.0.6",
                        "import importlib.metadata as m, p4runtime_sh, sys; "
                        "sys.exit(m.version('p4runtime-shell') != '0.0.6')",
                        CACHE / "p4lb-bench-p4rtshell"),
}
NETWORK_TROUBLE = ("NewConnectionError", "Failed to establish a new connection",
                   "Temporary failure in name resolution", "Name or service not known",
                   "ConnectTimeoutError", "Network is unreachable", "ProxyError",
                   "Could not fetch URL", "SSLError", "No matching distribution")


def library_python(name: str) -> tuple[Path | None, str]:
    """(the venv's python, "") with ``name`` installed, or (None, why it is skipped)."""
    requirement, check, cache = LIBRARIES[name]
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / "venv"
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with open(cache / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a test may be building the same venv
        if python.exists() and subprocess.run([str(python), "-c", check], env=env,
                                              capture_output=True).returncode == 0:
            return python, ""
        subprocess.run(["rm", "-rf", str(venv)], check=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                              text=True)
        if made.returncode != 0:
            return None, f"python -m venv failed: {made.stderr.strip()[:200]}"
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", requirement],
                             capture_output=True, text=True, timeout=900, env=env)
        if pip.returncode != 0:
            subprocess.run(["rm", "-rf", str(venv)], check=False)
            lines = (pip.stderr + pip.stdout).strip().splitlines()
            trouble = [line.strip() for line in lines
                       if any(marker in line for marker in NETWORK_TROUBLE)]
            reason = (trouble or lines or ["pip failed"])[0]  # the cause, not the summary
            return None, f"pip install {requirement}: {reason[:200]}"
        if subprocess.run([str(python), "-c", check], env=env,
                          capture_output=True).returncode != 0:
            return None, f"{requirement} installed but does not import"
    return python, ""
