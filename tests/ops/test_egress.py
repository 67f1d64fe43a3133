"""Nothing leaves the machine: connect()/sendto() audits inside a private network namespace.

Each audit runs a real command under ``strace -f`` inside ``unshare -n`` with only ``lo`` up,
so nothing can leave during the audit, and fails on any AF_INET / AF_INET6 destination
outside loopback, whether or not the attempt succeeded (inside the namespace it cannot).

1. ``recgen run pcrec`` on the tiny config: the embedded Ray, its dashboard process, Ray Train
   workers with a torch process group, and every stage.
2. A ``ray start --head`` node started the way the tests and ``docs/cluster.md`` start one,
   plus ``ray job submit`` of a recgen run to it.
"""
from __future__ import annotations

import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.egress

_ADDR = re.compile(r'sin_addr=inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"')


def outside_loopback(trace: str) -> list[str]:
    """Lines of an strace log whose AF_INET/AF_INET6 destination is not a loopback address."""
    bad = []
    for line in trace.splitlines():
        if "AF_INET" not in line or not ("connect(" in line or "sendto(" in line or "sendmsg(" in line):
            continue
        for v4, v6 in _ADDR.findall(line):
            ip = ipaddress.ip_address(v4 or v6)
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
                ip = ip.ipv4_mapped
            if not (ip.is_loopback or ip.is_unspecified):
                bad.append(line.strip())
    return bad


def culprits(trace: str, bad: list[str]) -> str:
    """The offending lines, each with the command line its process (or parent) exec'd."""
    execs = {}
    for line in trace.splitlines():
        if "execve(" in line:
            execs[line.split()[0]] = line[:400]
    return "\n".join(f"{b[:200]}\n    by {execs.get(b.split()[0], '(pid exec not seen: a fork)')}" for b in bad[:10])


def test_outside_loopback_parser_flags_what_it_should():
    trace = textwrap.dedent("""\
        1 connect(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("169.254.169.254")}, 16) = -1 ENETUNREACH
        1 connect(4, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = -1 ENETUNREACH
        1 connect(5, {sa_family=AF_INET6, sin6_port=htons(1), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr)}, 28) = -1
        1 connect(6, {sa_family=AF_INET, sin_port=htons(6379), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
        1 connect(7, {sa_family=AF_INET6, sin6_port=htons(1), inet_pton(AF_INET6, "::ffff:127.0.0.1", &sin6_addr)}, 28) = 0
        1 connect(8, {sa_family=AF_INET6, sin6_port=htons(1), inet_pton(AF_INET6, "::1", &sin6_addr)}, 28) = 0
        1 connect(9, {sa_family=AF_UNIX, sun_path="/tmp/ray/session/sockets/raylet"}, 110) = 0
    """)
    bad = outside_loopback(trace)
    assert len(bad) == 3 and "169.254.169.254" in bad[0] and "10.255.255.53" in bad[1] and "2001:db8::1" in bad[2]


def _sandbox_prefix() -> list[str]:
    for tool in ("strace", "unshare", "ip"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: `make test` installs strace, util-linux and iproute2 where absent")
    # root: a plain network namespace; otherwise a user namespace maps us to root inside it
    return ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-r", "-n"]


def audit(script: str, tmp_path: Path, timeout: float = 600) -> tuple[subprocess.CompletedProcess, str]:
    """Run a bash ``script`` under strace in a fresh network namespace with only ``lo`` up."""
    trace = tmp_path / "trace.txt"
    body = tmp_path / "body.sh"
    body.write_text("set -e\n" + script)
    outer = (f"ip link set lo up && exec strace -f -qq --seccomp-bpf -Y -e trace=connect,sendto,sendmsg,execve -s 300 "
             f"-o {trace} bash {body}")
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", TQDM_DISABLE="1",
               DGLBACKEND="pytorch", RAY_ENABLE_UV_RUN_RUNTIME_ENV="0")
    for k in ("RAY_ADDRESS", "RECGEN_USER_HOME"):
        env.pop(k, None)
    r = subprocess.run([*_sandbox_prefix(), "bash", "-c", outer], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=timeout)
    return r, trace.read_text() if trace.exists() else ""


def test_tiny_pcrec_run_connects_only_to_loopback(tmp_path):
    r, trace = audit(f"recgen run pcrec --config configs/pcrec/tiny.yaml "
                     f"--set pretrain.trainer.num_workers=1 --artifacts {tmp_path / 'art'}\n",
                     tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "finished" in r.stdout
    assert trace.count("connect(") > 50, "strace saw no Ray traffic: the audit did not audit anything"
    bad = outside_loopback(trace)
    assert not bad, "connections outside loopback:\n" + culprits(trace, bad)


def test_ray_start_head_and_job_submit_connect_only_to_loopback(tmp_path):
    # the head the cluster tests and docs/cluster.md start: Ray's processes get ray_process_env()
    short = tempfile.mkdtemp(prefix="re", dir="/tmp")  # Ray's unix socket paths must stay short
    script = textwrap.dedent(f"""\
        export RAY_AUTH_MODE=token RAY_AUTH_TOKEN={"ab" * 32}
        free_port() {{ python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }}
        # Ray gives a new node 30 s to register; under strace on a loaded 2-core machine a head
        # can miss that, so a head that dies while starting is started once more
        start_head() {{
            GCS=$(free_port); DASH=$(free_port)
            setsid recgen ray start --head --block --node-ip-address 127.0.0.1 --port $GCS \\
                --dashboard-host 127.0.0.1 --dashboard-port $DASH --num-cpus 2 --temp-dir {short} \\
                --disable-usage-stats >> {tmp_path}/head.log 2>&1 &
            HEAD=$!
            for i in $(seq 150); do
                ray job list --address http://127.0.0.1:$DASH > /dev/null 2>&1 && return 0
                kill -0 $HEAD 2> /dev/null || return 1
                sleep 1
            done
            return 1
        }}
        trap 'kill -TERM -- -$HEAD 2>/dev/null; sleep 5; kill -KILL -- -$HEAD 2>/dev/null || true' EXIT
        start_head || {{ kill -KILL -- -$HEAD 2> /dev/null || true; start_head; }}
        ray job submit --address http://127.0.0.1:$DASH --working-dir . -- \\
            recgen run pcrec --config configs/pcrec/tiny.yaml --until split --artifacts {tmp_path}/art
        sleep 5   # the dashboard's periodic modules get a chance to run
        """)
    try:
        r, trace = audit(script, tmp_path)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + (tmp_path / "head.log").read_text()[-2000:]
    assert "succeeded" in r.stdout + r.stderr
    assert trace.count("connect(") > 50
    bad = outside_loopback(trace)
    assert not bad, "connections outside loopback:\n" + culprits(trace, bad)
