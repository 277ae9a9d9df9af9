"""Hostile site files (issue 15, item 4): each is refused with one-line `FILE:LINE:COL: path: message`
problems, never a traceback, a hang or a memory blow-up. Bombs included; `flux-edge validate` on a
sample of them prints one line per problem and exits 2."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from controller.config import ConfigError, load_site, parse_site
from tests.config.test_broken_files import BASE, ENV

LINE = re.compile(r"^[^\n]+:\d+:\d+: [^\n]+: [^\n]+$")


def bomb(levels: int, width: int) -> str:
    lines = [f'l0: &l0 [{", ".join(["lol"] * width)}]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def cases() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    # Alias bombs: the 281-byte billion laughs and relatives, at the top and inside the site.
    for levels, width in ((9, 9), (6, 9), (12, 4), (20, 3), (5, 30), (30, 2), (8, 12), (4, 101)):
        out.append((f"bomb {levels}x{width}", bomb(levels, width)))
        out.append((f"bomb {levels}x{width} in a mode", BASE.replace("      params: {soe_kwh: 700}",
                                                                      "      params: {soe_kwh: 700}") + bomb(levels, width)))
    out.append(("merge-key bomb", "a: &a {x: 1}\n" + "".join(
        f"b{i}: &b{i} {{<<: [*{'a' if i == 0 else f'b{i - 1}'}, *{'a' if i == 0 else f'b{i - 1}'}], y{i}: 1}}\n"
        for i in range(40))))
    # Self-referencing aliases.
    out += [("self sequence", "&a [*a]"), ("self mapping", "a: &a {b: *a}"),
            ("self in site", BASE + "x: &x [1, [2, *x]]\n"), ("self deep", "&a {x: [{y: [*a]}]}"),
            ("undefined alias", "a: *nowhere\n"), ("alias to key", "? &k a\n: 1\n*k : 2\n")]
    # Nesting: flow and block, 33 to 100,000 deep.
    for depth in (33, 64, 200, 500, 1000, 5000, 100_000):
        out.append((f"flow lists {depth}", "[" * depth + "]" * depth))
        out.append((f"flow maps {depth}", "{a: " * depth + "1" + "}" * depth))
    for depth in (40, 300):
        out.append((f"block maps {depth}", "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + "  " * depth + "v\n"))
        out.append((f"block lists {depth}", "".join(f"{'  ' * i}-\n" for i in range(depth)) + "  " * depth + "x\n"))
    out.append(("unclosed 400 kB of brackets", "[" * 200_000))
    # Size.
    out.append(("300 kB comment", "#" + "x" * 300_000 + "\n" + BASE))
    out.append(("300 kB value", BASE.replace("name: Test", "name: " + "y" * 300_000)))
    out.append(("100k keys", "".join(f"k{i}: {i}\n" for i in range(100_000))))
    # Strings and scalars.
    out += [("6 kB timezone", BASE.replace("  name: Test", "  name: Test\n  timezone: " + "A" * 6000)),
            ("path timezone", BASE.replace("  name: Test", "  name: Test\n  timezone: ../../etc/passwd")),
            ("nul in timezone", BASE.replace("  name: Test", '  name: Test\n  timezone: "Europe/\\0London"')),
            ("400-digit number", BASE.replace("port: 15020", "port: " + "9" * 400)),
            ("huge float", BASE.replace("nameplate_power_kw: 250", "nameplate_power_kw: 1e400")),
            ("inf limit", BASE.replace("site_import_limit_kw: 300", "site_import_limit_kw: .inf")),
            ("nan limit", BASE.replace("site_import_limit_kw: 300", "site_import_limit_kw: .nan")),
            ("age 1e12", BASE.replace("  soe_max_kwh: 950", "  soe_max_kwh: 950\n  max_reading_age_s: 1e12")),
            ("period true", BASE.replace("  soe_max_kwh: 950", "  soe_max_kwh: 950\n  period_s: true")),
            ("binary tag", BASE + "blob: !!binary aGVsbG8=\n"), ("python tag", "!!python/object:os.system {}\n"),
            ("set tag", BASE + "s: !!set {a, b}\n"), ("timestamp key", BASE + "2001-01-01: x\n"),
            ("tab indentation", BASE.replace("    name: bess", "\tname: bess")),
            ("BOM and NUL", "\ufeff" + BASE + "\0"), ("control chars", BASE.replace("name: Test", "name: \x07\x08")),
            ("two documents", BASE + "---\n" + BASE), ("only a scalar", "hello"), ("only a list", "- 1\n- 2\n"),
            ("empty", ""), ("comment only", "# nothing\n"), ("null document", "~\n"),
            ("mapping key", BASE + "? [a, b]\n: 1\n"), ("duplicate site", BASE + "site: {id: t2, name: T}\n"),
            ("inline secret", BASE.replace('api_key: "${KEY}"', 'api_key: "sk-live"')),
            ("lower-case ref", BASE.replace('api_key: "${KEY}"', 'api_key: "${key}"')),
            ("prefixed ref", BASE.replace('api_key: "${KEY}"', 'api_key: "x-${KEY}"')),
            ("ref in host", BASE.replace("host: 127.0.0.1\n    port: 15020", "host: ${HOME}\n    port: 15020")),
            ("unset ref", BASE.replace('api_key: "${KEY}"', 'api_key: "${NOT_SET_ANYWHERE}"')),
            ("devices a string", BASE.replace("devices:\n", "devices: nope\nx:\n")),
            ("controller a list", BASE.replace("controller:\n", "controller: [1]\nc:\n"))]
    # Every line of the base file cut short, and every value replaced by a wrong kind.
    base_lines = BASE.splitlines()
    for i, line in enumerate(base_lines):
        if ":" in line and not line.strip().startswith("-"):
            key, _, _ = line.partition(":")
            for j, bad in enumerate(("[", "{a: ", "true", ".inf", "*x", "!!binary Zm9v", "'unterminated")):
                if (i + j) % 4 == 0:
                    mutated = [*base_lines[:i], f"{key}: {bad}", *base_lines[i + 1:]]
                    out.append((f"line {i + 1} -> {bad}", "\n".join(mutated) + "\n"))
    rng = random.Random(15)
    for n in range(20):  # random byte damage
        raw = bytearray(BASE.encode())
        for _ in range(8):
            raw[rng.randrange(len(raw))] = rng.choice(b"[]{}&*!|>:-?\t\"'%@`\\")
        out.append((f"random damage {n}", raw.decode("utf-8", "replace")))
    return out


CASES = cases()


@pytest.fixture(autouse=True)
def _no_inline_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLUX_ALLOW_INLINE_SECRETS", raising=False)


def test_there_are_at_least_a_hundred() -> None:
    assert len(CASES) >= 100, len(CASES)


@pytest.mark.parametrize(("why", "text"), CASES, ids=[c[0] for c in CASES])
def test_refused_with_one_line_problems(why: str, text: str) -> None:
    try:
        parse_site(text, "hostile.yaml", ENV)
    except ConfigError as exc:
        assert exc.problems
        for p in exc.problems:
            assert LINE.match(str(p)), repr(str(p))[:300]
            assert str(p).startswith("hostile.yaml:")
        return
    pytest.fail(f"{why}: accepted")


def test_non_utf8_and_unreadable_files(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(BASE.replace("Test", "T\xe9st").encode("latin-1"))
    with pytest.raises(ConfigError) as info:
        load_site(bad, ENV)
    assert len(info.value.problems) == 1 and "not UTF-8" in str(info.value.problems[0])
    with pytest.raises(ConfigError):
        load_site(tmp_path / "absent.yaml", ENV)


def test_validate_prints_one_line_per_problem_and_exits_2(tmp_path: Path) -> None:
    files = []
    for i, (_, text) in enumerate(CASES[::12]):
        f = tmp_path / f"hostile{i}.yaml"
        f.write_text(text, encoding="utf-8", errors="replace")
        files.append(str(f))
    result = subprocess.run([sys.executable, "-m", "controller", "validate", *files], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert lines and all(LINE.match(line) for line in lines), lines[:5]
