"""The documentation stays true: man pages generated from --help cover every
verb and render cleanly, the committed man/ pages and docs/boards/ tables are
what their generators produce today, links between the pages resolve, and the
walk-through of docs/getting-started.md runs as written and prints what it
shows."""
import filecmp
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ABOTA, BUILD, SRCDIR, run

GEN_MAN = os.path.join(SRCDIR, "scripts", "gen-man.sh")
GEN_BOARDS = os.path.join(SRCDIR, "scripts", "gen-board-docs.py")
PYTHON = "/usr/bin/python3"


def verbs():
    """(verb, summary) pairs of the Verbs: block of `abota --help`."""
    out = run(ABOTA, "--help").stdout
    block = out.split("\nVerbs:\n", 1)
    assert len(block) == 2, f"no Verbs: section in abota --help:\n{out}"
    pairs = []
    for line in block[1].splitlines():
        m = re.match(r"^  ([a-z][a-z0-9-]*)\s+(\S.*)$", line)
        if m:
            pairs.append((m.group(1), m.group(2)))
    assert len(pairs) >= 8, f"too few verbs parsed from abota --help: {pairs}"
    return pairs


@pytest.fixture(scope="module")
def man_dir(tmp_path_factory):
    if not shutil.which("help2man"):
        pytest.fail("help2man is missing (scripts/install-deps.sh installs it)")
    out = tmp_path_factory.mktemp("man")
    run("sh", GEN_MAN, BUILD, out)
    return str(out)


def _flat(text):
    """Rendered man text on one line: hyphenated breaks joined, spaces squeezed."""
    text = re.sub("\u2010\n\\s*", "", text)  # a word hyphenated by groff
    return " ".join(re.sub(r"-\n\s*", "-", text).split())


def render(page):
    """man -l with warnings on: returns (text, warnings)."""
    p = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", page], capture_output=True,
                       text=True, env=dict({k: v for k, v in os.environ.items() if k != "MAN_KEEP_FORMATTING"},
                                MANWIDTH="100"))
    assert p.returncode == 0, f"man -l {page} failed: {p.stderr}"
    return p.stdout, p.stderr.strip()


def test_every_verb_has_a_man_page_that_renders(man_dir):
    main_text, warn = render(os.path.join(man_dir, "abota.1"))
    assert warn == "", f"abota.1: {warn}"
    for verb, summary in verbs():
        page = os.path.join(man_dir, f"abota-{verb}.1")
        assert os.path.isfile(page), f"no man page for verb {verb}"
        text, warn = render(page)
        assert warn == "", f"abota-{verb}.1: {warn}"
        # the page is that verb's --help, not an empty shell
        assert f"abota-{verb} - abota {verb}: {summary}" in _flat(text), text[:400]
        help_text = run(ABOTA, verb, "--help").stdout
        first = help_text.splitlines()[0].split()[-1]  # last word of the usage line
        assert first in _flat(text), f"abota-{verb}.1 lacks its usage ({first!r})"
        assert f"abota-{verb}(1)" in _flat(main_text), f"abota.1 does not refer to abota-{verb}(1)"


def test_program_pages_render(man_dir):
    expect = {"abota-sim.1": "abota-sim"}
    if os.path.exists(os.path.join(BUILD, "src", "abotad", "abotad")):
        expect["abotad.8"] = "--run-once"
    if os.path.exists(os.path.join(BUILD, "src", "abota-server", "abota-server")):
        expect["abota-server.8"] = "--data"
    for name, needle in expect.items():
        page = os.path.join(man_dir, name)
        assert os.path.isfile(page), f"{name} not generated"
        text, warn = render(page)
        assert warn == "", f"{name}: {warn}"
        assert needle in text, f"{name} lacks {needle!r}"


def _without_date(path):
    with open(path, encoding="utf-8") as f:
        # .TH carries the month of generation, the first line help2man's version
        return [l for l in f.read().splitlines()
                if not l.startswith(".TH ") and not l.startswith(".\\\" DO NOT MODIFY")]


def test_committed_man_pages_are_up_to_date(man_dir):
    committed = os.path.join(SRCDIR, "man")
    for name in sorted(os.listdir(man_dir)):
        mine = os.path.join(committed, name)
        assert os.path.isfile(mine), f"man/{name} missing: run make man and commit man/"
        assert _without_date(mine) == _without_date(os.path.join(man_dir, name)), \
            f"man/{name} differs from the program's --help: run make man and commit man/"
    stale = [n for n in os.listdir(committed)
             if re.fullmatch(r"abota-[a-z0-9-]+\.1", n) and n != "abota-sim.1"
             and not os.path.exists(os.path.join(man_dir, n))]
    assert not stale, f"man/ has pages for verbs abota no longer has: {stale}"


def test_board_docs_are_up_to_date(tmp_path):
    out = tmp_path / "boards"
    run(PYTHON, GEN_BOARDS, "--out", out)
    docs = os.path.join(SRCDIR, "docs", "boards")
    generated = sorted(os.listdir(out))
    assert "README.md" in generated and len(generated) >= 2
    for name in generated:
        mine = os.path.join(docs, name)
        assert os.path.isfile(mine), f"docs/boards/{name} missing: run scripts/gen-board-docs.py"
        assert filecmp.cmp(mine, out / name, shallow=False), \
            f"docs/boards/{name} is not what boards/ says: run scripts/gen-board-docs.py"
    # a page generated for a profile that no longer exists
    for name in os.listdir(docs):
        with open(os.path.join(docs, name), encoding="utf-8") as f:
            if f.readline().startswith("<!-- Generated by scripts/gen-board-docs.py"):
                assert name in generated, f"docs/boards/{name} has no profile in boards/ any more"
    # every profile has a page
    for d in os.listdir(os.path.join(SRCDIR, "boards")):
        if os.path.isfile(os.path.join(SRCDIR, "boards", d, "board.conf")):
            assert f"{d}.md" in generated


def test_board_docs_generator_rejects_bad_profiles(tmp_path):
    src = os.path.join(SRCDIR, "boards", "stm32mp157f-dk2")
    cases = {
        "size": ("size=4MiB", "size=4 MiB", "not a size"),
        "name": ("name=stm32mp157f-dk2", "name=other", "differs from the directory name"),
        "missing": ("tfa=r3\n", "\n", "[board] tfa missing"),
    }
    for case, (old, new, msg) in cases.items():
        boards = tmp_path / case
        d = boards / "stm32mp157f-dk2"
        shutil.copytree(src, d)
        text = (d / "board.conf").read_text()
        assert old in text
        (d / "board.conf").write_text(text.replace(old, new, 1))
        out = tmp_path / f"out-{case}"
        p = run(PYTHON, GEN_BOARDS, "--boards", boards, "--out", out, check=False)
        assert p.returncode == 1, p.stdout
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and msg in lines[0] and "board.conf" in lines[0], p.stderr
        assert not out.exists() or not os.listdir(out), "wrote pages despite the error"


def _slug(heading):
    """GitHub's anchor for a Markdown heading."""
    h = heading.strip().lower().replace("`", "")
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")


def _anchors(path):
    with open(path, encoding="utf-8") as f:
        text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


DOC_PAGES = ["README.md", "docs/index.md", "docs/getting-started.md", "docs/concepts.md",
             "docs/cli.md", "docs/migration.md", "docs/boards/stm32mp1.md",
             "docs/boards/stm32mp2.md", "docs/boards/README.md"]


def test_links_in_the_guides_resolve():
    pages = DOC_PAGES + [f"docs/boards/{n}" for n in os.listdir(os.path.join(SRCDIR, "docs", "boards"))
                         if n.endswith(".md")]
    for page in sorted(set(pages)):
        path = os.path.join(SRCDIR, page)
        with open(path, encoding="utf-8") as f:
            text = re.sub(r"```.*?```", "", f.read(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, anchor = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) \
                if file_part else path
            assert os.path.exists(dest), f"{page}: link to {target}: {dest} does not exist"
            if anchor and dest.endswith(".md"):
                assert anchor in _anchors(dest), f"{page}: link to {target}: no such heading"


def _progress(line):
    """A progress line's percentage depends on the installer's step weights;
    the steps and their order on the page are what must stay true."""
    line = line.rstrip()
    m = re.match(r"^\s*\d{1,3}% (.*)$", line)
    return f"N% {m.group(1)}" if m else line


def test_getting_started_runs_as_written(tmp_path):
    """Runs every shell block from section 2 on of docs/getting-started.md in one
    shell (against ABOTA_BUILD, in a temporary directory) and checks that each
    output block shown after a command block appears in that block's output."""
    with open(os.path.join(SRCDIR, "docs", "getting-started.md"), encoding="utf-8") as f:
        doc = f.read()
    doc = doc[doc.index("\n## 2."):]
    # sequence of ("sh", text) / ("out", text) in document order
    blocks = [(m.group(1) or "out", m.group(2))
              for m in re.finditer(r"^```(sh)?\n(.*?)^```$", doc, re.S | re.M)]
    assert sum(1 for k, _ in blocks if k == "sh") >= 8
    work = tmp_path / "try"
    script = ["set -u",
              f"export PATH={BUILD}/src/abota:{BUILD}/src/abota-sim:$PATH",
              f"mkdir {work} && cd {work}"]
    n = 0
    expected = {}
    for kind, text in blocks:
        if kind == "sh":
            n += 1
            script.append(f"{{\n{text}\n}} > {tmp_path}/out{n} 2>&1")
        else:
            assert n, "output block before the first command block"
            expected.setdefault(n, []).append(text)
    # (the page's own setup block, export PATH=$PWD/build/... and mkdir
    # /tmp/abota-try, is in section 1 and replaced by the first lines above)
    p = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True,
                       timeout=300)
    # the page ends with an install that is refused (exit status 1)
    assert p.returncode == 1, p.stderr
    for i in range(1, n + 1):
        with open(tmp_path / f"out{i}", encoding="utf-8") as f:
            text = f.read()
        assert "AddressSanitizer" not in text and "runtime error" not in text, text
    for i, outs in expected.items():
        with open(tmp_path / f"out{i}", encoding="utf-8") as f:
            text = f.read()
        lines = [_progress(l) for l in text.splitlines()]
        got = set(lines)
        for out in outs:
            shown = [_progress(l) for l in out.splitlines() if l.strip() not in ("", "...")]
            for line in shown:
                assert line in got, \
                    f"getting-started block {i}: line not in the output:\n{line}\n--- got:\n" + \
                    "\n".join(lines)
            # the install's steps in the order the page shows them
            steps = [l for l in shown if l.startswith("N% ")]
            done = [l for l in lines if l.startswith("N% ")]
            pos = 0
            for step in steps:
                assert step in done[pos:], \
                    f"getting-started block {i}: progress step out of order: {step}\n" + \
                    "\n".join(done)
                pos = done.index(step, pos) + 1


def test_board_tables_match_the_simulated_disks(tmp_path):
    """The generator reads board.conf on its own (Python); the partition tables
    it writes must be what abota-sim, with the C parser, puts on a disk."""
    sim = os.path.join(BUILD, "src", "abota-sim", "abota-sim")
    units = {"GiB": 1 << 30, "MiB": 1 << 20, "KiB": 1 << 10}
    boards = sorted(d for d in os.listdir(os.path.join(SRCDIR, "boards"))
                    if os.path.isfile(os.path.join(SRCDIR, "boards", d, "board.conf")))
    for b in boards:
        run(sim, "create", b, tmp_path / b)
        table = json.loads(run("sfdisk", "--json", tmp_path / b / "disk.img").stdout)
        table = table["partitiontable"]
        sector = table.get("sectorsize", 512)
        with open(os.path.join(SRCDIR, "docs", "boards", f"{b}.md"), encoding="utf-8") as f:
            rows = re.findall(r"^\| (\d+) \| `([^`]+)` \| `0x([0-9A-F]+)` \| ([^|]+) \| [^|]+ \| "
                              r"([^|]+) \| ([^|]+) \|", f.read(), re.M)
        parts = table["partitions"]
        assert len(rows) == len(parts), f"{b}: {len(rows)} rows, {len(parts)} partitions"
        for (_, name, off, size, uuid, bootable), p in zip(rows, parts):
            assert p["name"] == name, (b, name, p)
            assert p["start"] * sector == int(off, 16), (b, name, p)
            m = re.match(r"(rest \()?(\d+(?:\.\d)?) (GiB|MiB|KiB)", size)
            assert m, (b, name, size)
            got, shown = p["size"] * sector, float(m.group(2)) * units[m.group(3)]
            if m.group(1) or "." in m.group(2):  # rounded to 0.1 of the unit
                assert abs(got - shown) <= 0.05 * units[m.group(3)], (b, name, size, got)
            else:
                assert got == shown, (b, name, size, got)
            if uuid.strip() != "—":
                assert p["uuid"].lower() == uuid.strip().strip("`"), (b, name, p)
            assert ("LegacyBIOSBootable" in p.get("attrs", "")) == (bootable.strip() == "yes"), \
                (b, name, p)
