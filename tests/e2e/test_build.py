"""The README's two commands on a bare machine: `make run` and `make test`
install the missing packages before anything is compiled, and the compiler
then gets the include flags of the packages just installed.

A fresh Debian 12 machine has no sofia-sip headers, so pkg-config fails when
make starts. The Makefile used to read the flags once, at that moment, and
build with none (`fatal error: sofia-sip/su_wait.h`), even though deps.sh had
just installed the package. The real Makefile runs here in a scratch
directory with stand-ins for what it calls: a pkg-config that fails until
scripts/deps.sh has "installed" the packages, a cc that records its
arguments, and scripts/test.sh, scripts/run.sh and bench/router that record
that they ran. (`make bench-router` installs Kamailio the same way.)
"""
import os
import shutil
import stat
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def script(path, body):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)


@pytest.fixture
def bare(tmp_path):
    """A scratch tree with the real Makefile and a machine without packages."""
    shutil.copy(os.path.join(REPO, "Makefile"), tmp_path / "Makefile")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "bin").mkdir()
    (tmp_path / "probe.c").write_text("int main(void) { return 0; }\n")
    installed = tmp_path / "installed"
    events = tmp_path / "events"
    script(tmp_path / "bin" / "pkg-config",
           f'[ -e "{installed}" ] || exit 1\n'
           'case "$1" in --cflags) echo -I/usr/include/fake-sofia ;; '
           '*) echo -lfake ;; esac\n')
    script(tmp_path / "scripts" / "deps.sh",
           f'echo "deps $*" >> "{events}"; touch "{installed}"\n')
    script(tmp_path / "scripts" / "test.sh", f'echo "test.sh" >> "{events}"\n')
    script(tmp_path / "scripts" / "run.sh", f'echo "run.sh" >> "{events}"\n')
    (tmp_path / "bench").mkdir()
    script(tmp_path / "bench" / "router", f'echo "bench/router" >> "{events}"\n')
    # what make bench-router builds bench/floor302 from
    for src in ("bench/floor302.c", "callrouter/sipmsg.c", "common/sipuri.c",
                "common/hex.c", "common/netaddr.c"):
        (tmp_path / src).parent.mkdir(exist_ok=True)
        (tmp_path / src).write_text("int x;\n")
    script(tmp_path / "bin" / "cc",
           f'echo "cc $*" >> "{events}"\n'
           'while [ $# -gt 0 ]; do [ "$1" = -o ] && { mkdir -p "$(dirname "$2")"; '
           ': > "$2"; }; shift; done\n')
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "BUILD", "SANITIZER", "CFLAGS"):
        env.pop(k, None)
    return tmp_path, env, events


def make(tree, env, *args):
    # One object stands for the whole build; PROTO_H= drops the protoc-c step.
    return subprocess.run(
        ["make", "--no-print-directory", "BINS=build/obj/probe.o", "PROTO_H=",
         "CC=cc", *args], cwd=tree, env=env, capture_output=True, text=True,
        timeout=60)


@pytest.mark.parametrize("goal,deps,then,jobs",
                         [("test", "deps test", "test.sh", []),
                          ("run", "deps", "run.sh", []),
                          ("test", "deps test", "test.sh", ["-j2"]),
                          ("bench-router", "deps bench", "bench/router", [])],
                         ids=["test", "run", "test-j2", "bench-router"])
def test_readme_commands_install_then_build_with_the_new_flags(bare, goal, deps,
                                                                then, jobs):
    tree, env, events = bare
    r = make(tree, env, *jobs, goal)
    assert r.returncode == 0, r.stdout + r.stderr
    # the second make must share the first one's job slots (make -j2 test)
    assert "jobserver unavailable" not in r.stderr, r.stderr
    lines = [l.strip() for l in events.read_text().splitlines()]
    assert lines[0] == deps, lines
    compile_ = [l for l in lines if l.startswith("cc ") and "probe.c" in l]
    assert compile_, f"nothing was compiled: {lines}"
    assert "-I/usr/include/fake-sofia" in compile_[0], (
        "the compiler did not get the flags of the packages deps.sh installed: "
        + compile_[0])
    assert lines.index(compile_[0]) > 0 and lines[-1] == then, lines


def test_build_without_packages_says_what_to_do(bare):
    tree, env, events = bare
    r = make(tree, env, "all")
    assert r.returncode != 0
    assert "development packages missing" in r.stderr
    assert "make deps" in r.stderr
    assert not events.exists(), "nothing should have been compiled or installed"
