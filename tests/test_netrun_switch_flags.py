"""netrun passes only the flags the installed switch's ``--help`` lists: a
simple_switch_grpc built without Thrift (a stand-in that rejects ``--thrift-port``
exactly as BMv2's option parser does) comes up in Mininet and answers P4Runtime."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from procs import ENV, REPO

from p4runtime_lib import SwitchConnection

try:
    from netrun.network import help_flags
except ImportError as exc:  # Mininet comes from Debian; `make setup` installs it
    pytest.skip(f"Mininet is not importable: {exc}", allow_module_level=True)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="Mininet needs root")
TOPOLOGY = REPO / "topology.json"
BMV2 = Path("/opt/bmv2/bin/simple_switch_grpc")

# BMv2's general options as `simple_switch_grpc --help` prints them (boost's layout),
# for a build configured --without-thrift: no --thrift-port line.
GENERAL_HELP = """\
Usage: SWITCH_NAME [options] <path to JSON config file>
Options:
  -h [ --help ]               Display this help message
  -i [ --interface ] arg      <port-num>@<interface-name>: Attach network
                              interface <interface-name> as port <port-num> at
                              startup. Can appear multiple times
  --pcap [=arg(=.)]           Generate pcap files for interfaces.
  --device-id arg             Device ID, used to identify the device in IPC
                              messages (default 0)
  --nanolog arg               IPC socket to use for nanomsg pub/sub logs
  --log-console               Enable logging on stdout
  --log-file arg              Enable logging to given file
  -L [ --log-level ] arg      Set log level
  --log-flush                 If used with '--log-file', the logger will flush
                              to disk after every log message
  --no-p4                     Enable the switch to start without an inout
                              configuration
"""
TARGET_HELP = """\
This target also comes with its own command line parser, make sure you separate general \
bmv2 options from, target specific options with '--'
Target specific options:
Target options:
  --grpc-server-addr arg          Bind gRPC server to given address [default is
                                  0.0.0.0:9559]
  --cpu-port arg                  Choose a numerical value for the CPU port
  --priority-queues arg           Number of priority queues (default is 1)
"""
# BMv2's answer to an option its parser does not know (bm_sim/options_parse.cpp: on
# stdout, exit status 1)
REJECTION = ("Error while parsing command line arguments\n"
             "Usage: SWITCH_NAME [options] <path to JSON config file>\n")
TARGET_HINT = ("Your target comes with its own command line parser, make sure you separate "
               "general bmv2 options from, target specific options with '--'\n")

STAND_IN = '''\
#!{python}
"""simple_switch_grpc without Thrift: BMv2's help and rejections, else p4switch."""
import os, sys
GENERAL, TARGET, REJECTION, HINT = {general!r}, {target!r}, {rejection!r}, {hint!r}
KNOWN = {known!r}
args = sys.argv[1:]
if "--help" in args or "-h" in args:
    with open({asked!r}, "a") as asked:
        asked.write(" ".join(args) + "\\n")
    sys.stdout.write(GENERAL + TARGET)
    sys.exit(0)
general = args[:args.index("--")] if "--" in args else args
unknown = [a for a in general if a.startswith("--") and a.split("=")[0] not in KNOWN]
if unknown:
    sys.stdout.write(REJECTION + GENERAL.split("\\n", 1)[1] + HINT)
    sys.exit(1)
os.environ["PYTHONPATH"] = {utils!r}
os.execv(sys.executable, [sys.executable, "-m", "p4switch", *args])
'''


def write_stand_in(directory: Path, target_help: str = TARGET_HELP) -> tuple[Path, Path]:
    """The stand-in executable and the file it logs each --help call to."""
    asked = directory / "help-asked.txt"
    known = sorted({"--help", "--interface", "--pcap", "--device-id", "--nanolog",
                    "--log-console", "--log-file", "--log-level", "--log-flush", "--no-p4"})
    script = directory / "simple_switch_grpc"
    script.write_text(STAND_IN.format(python=sys.executable, general=GENERAL_HELP,
                                      target=target_help, rejection=REJECTION,
                                      hint=TARGET_HINT, known=known, asked=str(asked),
                                      utils=str(REPO / "utils")))
    script.chmod(0o755)
    return script, asked


def test_help_flags_reads_boost_and_argparse_layouts() -> None:
    assert help_flags(GENERAL_HELP + TARGET_HELP) == {
        "--help", "--interface", "--pcap", "--device-id", "--nanolog", "--log-console",
        "--log-file", "--log-level", "--log-flush", "--no-p4", "--grpc-server-addr",
        "--cpu-port", "--priority-queues"}  # '--log-file' and "'--'" in prose don't count
    argparse_help = ("options:\n  -h, --help            show this help\n"
                     "  -i N@IFACE, --interface N@IFACE\n                        attach\n"
                     "  --thrift-port N       no effect, unlike --nanolog\n")
    assert help_flags(argparse_help) == {"--help", "--interface", "--thrift-port"}


def test_our_switch_help_lists_the_target_options_too() -> None:
    result = subprocess.run([sys.executable, "-m", "p4switch", "--help"], capture_output=True,
                            text=True, env=ENV, cwd=REPO, timeout=20, check=False)
    assert result.returncode == 0
    flags = help_flags(result.stdout)
    assert {"--thrift-port", "--log-console", "--device-id", "--grpc-server-addr",
            "--cpu-port", "--priority-queues"} <= flags


@pytest.mark.skipif(not BMV2.exists(), reason=f"{BMV2} not installed")
def test_the_installed_bmv2_lists_what_netrun_passes() -> None:
    result = subprocess.run([str(BMV2), "--help"], capture_output=True, text=True,
                            timeout=20, check=False)
    flags = help_flags(result.stdout)
    print(f"{BMV2} --help lists {len(flags)} flags; --thrift-port: {'--thrift-port' in flags}")
    assert {"--pcap", "--nanolog", "--device-id", "--log-console", "--grpc-server-addr",
            "--cpu-port", "--priority-queues"} <= flags


def test_the_stand_in_rejects_thrift_port_as_bmv2_does(tmp_path: Path) -> None:
    """What netrun passed before: BMv2's parser error, exit 1 (so the test below means
    something)."""
    script, _asked = write_stand_in(tmp_path)
    result = subprocess.run([str(script), "--device-id", "0", "x.json", "--thrift-port",
                             "9090", "--", "--grpc-server-addr", "127.0.0.1:1"],
                            capture_output=True, text=True, timeout=20, check=False)
    assert result.returncode == 1
    assert result.stdout.startswith("Error while parsing command line arguments\n")
    assert "Your target comes with its own command line parser" in result.stdout


@needs_root
def test_a_switch_without_thrift_comes_up_and_answers_p4runtime(tmp_path: Path) -> None:
    from netrun.demo import exchange, run_controller
    from netrun.ecmp import Ecmp
    from netrun.network import Network, SwitchOptions

    script, asked = write_stand_in(tmp_path)
    options = SwitchOptions.defaults(log_dir=tmp_path, pcap_dir=tmp_path / "pcaps",
                                     executable=[str(script)])
    with Network(TOPOLOGY, options) as network:
        for device_id, name in enumerate(network.switch_names()):
            switch = network.switch(name)
            assert "--thrift-port" not in switch.argv
            assert switch.argv[-4:] == ["--log-console", "--", "--grpc-server-addr",
                                        f"127.0.0.1:{50051 + device_id}"]
            cmdline = Path(f"/proc/{switch.process.pid}/cmdline").read_bytes().split(b"\0")
            assert b"p4switch" in cmdline  # the stand-in accepted the line and exec'd
            with SwitchConnection(name, network.grpc_address(name), device_id) as conn:
                capabilities = conn.capabilities()
            print(f"{name}: {' '.join(switch.argv[1:])}\n  Capabilities: {capabilities}")
            assert capabilities.startswith("1.")
        assert asked.read_text().splitlines() == ["--help"]  # once for three switches
        result = run_controller(network)
        assert result.returncode == 0, result.stderr
        ecmp = Ecmp.load()
        sent, received = exchange(network, ecmp, 20, "nothrift")
        predicted = ecmp.split(sent)
        print(f"sent {len(sent)} flows; h2 got {len(received['h2'])}, h3 "
              f"{len(received['h3'])} (crc16 predicts {len(predicted['h2'])}/"
              f"{len(predicted['h3'])})")
        assert sorted(received["h2"]) == sorted(predicted["h2"])
        assert sorted(received["h3"]) == sorted(predicted["h3"])


@needs_root
def test_a_switch_without_grpc_server_addr_is_refused_in_one_line(tmp_path: Path) -> None:
    from netrun.network import Network, NetworkError, SwitchOptions

    script, _asked = write_stand_in(tmp_path, target_help="")
    options = SwitchOptions.defaults(log_dir=tmp_path, pcap_dir=tmp_path / "pcaps",
                                     executable=[str(script)])
    network = Network(TOPOLOGY, options)
    with pytest.raises(NetworkError, match=r"^s1: the switch '.*simple_switch_grpc' does not "
                       r"accept --grpc-server-addr \(not in its --help\), needed for "
                       r"P4Runtime; use a simple_switch_grpc build or p4switch"):
        network.start()
    assert not network.state.path.exists()
    assert not [n for n in network.topology.switch_interfaces()
                if Path(f"/sys/class/net/{n}").exists()]
