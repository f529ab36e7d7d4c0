#!/usr/bin/env python3
"""check-manpages.py BUILD_DIR [SRCDIR] -- the man pages against the programs.

For chand-host, chand-guest, chanctl, chand-guest-replay and
chand-handler, checks both ways that

  - every long option that PROGRAM --help prints is documented in the
    OPTIONS section of doc/PROGRAM.8 (as the tag of an entry), and every
    long option documented there is in --help;
  - chanctl: every command that --help lists is documented in a COMMANDS
    section of doc/chanctl.8 (as the tag of an entry) and is in its
    SYNOPSIS, and every command documented there is in --help;
  - the daemons: every control-socket command (module/verb, such as
    vlog/reopen) is named in bold in the CONTROL COMMANDS section of the
    man page, and every module/verb command named there in bold, or as an
    entry's tag, exists.  The daemons list their control commands only
    while running (list-commands), so the list is taken from the source:
    the ctl_command_register() calls in lib/ and the daemon's directory,
    lib/ctl.c's built-ins and lib/vlog.c's vlog/ commands.

Prints one line per mismatch and a closing "manpages: N passed, N failed"
line, N counting single checks (one item in one direction).  Exits 0 if
everything matches, 1 on a mismatch, 2 if it cannot run (e.g. the
programs are not built).  scripts/check runs it in the unit tier.
"""

import glob
import os
import re
import subprocess
import sys

# (program, binary in the build directory, source directory of its
#  control commands or None)
PROGRAMS = [
    ("chand-host", "chand-host/chand-host", "chand-host"),
    ("chand-guest", "chand-guest/chand-guest", "chand-guest"),
    ("chand-qga", "chand-qga/chand-qga", "chand-qga"),
    ("chanctl", "utilities/chanctl", None),
    ("chand-guest-replay", "utilities/chand-guest-replay", None),
    ("chand-handler", "utilities/chand-handler", None),
]

LONG_OPTION = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)")
CTL_COMMAND = re.compile(r"^[a-z][a-z0-9-]*/[a-z][a-z0-9-]*$")
REGISTER = re.compile(
    r"\b(?:ctl_command_register|register_command)\s*\(\s*\"([^\"]+)\"")


def unescape(text):
    """Returns roff 'text' as plain text: no font changes, no escapes."""
    text = re.sub(r"\\f(\(..|\[[^]]*\]|.)", "", text)
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")
    text = re.sub(r"\\\((dq|lq|rq)", '"', text)
    text = re.sub(r"\\\(..", " ", text)
    return text


def macro_args(rest):
    """Splits the arguments of a roff macro line, honouring quotes."""
    return [a[1:-1] if a.startswith('"') else a
            for a in re.findall(r'"[^"]*"|\S+', rest)]


def bold_words(line):
    """Returns the words that 'line' (raw roff) sets in bold."""
    spans = []
    m = re.match(r"^\.(B|BR|RB|BI|IB)(?:\s+(.*))?$", line)
    if m:
        macro, args = m.group(1), macro_args(m.group(2) or "")
        if macro == "B":
            spans.append(" ".join(args))
        else:
            first_bold = macro[0] == "B"
            for i, arg in enumerate(args):
                if (i % 2 == 0) == first_bold:
                    spans.append(arg)
    spans += re.findall(r"\\fB(.*?)(?=\\f[RIP]|$)", line)
    words = []
    for span in spans:
        words += unescape(span).split()
    return words


class ManPage:
    """What a man page documents: per section, its entries' tags, its bold
    words and its plain text."""

    def __init__(self, path):
        self.path = path
        self.sections = []      # [(title, tags, bold words per line)]
        section = None
        after_tp = False
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line.startswith(".SH"):
                    title = unescape(" ".join(macro_args(line[3:])))
                    section = (title, [], [])
                    self.sections.append(section)
                    after_tp = False
                    continue
                if section is None:
                    continue
                if line.startswith(".TP") or line.startswith(".TQ"):
                    after_tp = True
                    continue
                if after_tp and not line.startswith(".\\\""):
                    tag = line
                    if tag.startswith("."):
                        tag = " ".join(macro_args(tag.split(None, 1)[1]
                                                  if " " in tag else ""))
                    section[1].append(unescape(tag).strip())
                    after_tp = False
                words = bold_words(line)
                if words:
                    section[2].append(words)

    def _sections(self, pattern):
        return [s for s in self.sections if re.search(pattern, s[0])]

    def tags(self, pattern):
        """The entries' tags in the sections whose title matches."""
        return [t for s in self._sections(pattern) for t in s[1]]

    def bold(self, pattern):
        return [w for s in self._sections(pattern) for ws in s[2] for w in ws]

    def options(self):
        """Long options documented as entries of the OPTIONS section."""
        found = set()
        for tag in self.tags(r"^OPTIONS$"):
            found.update(LONG_OPTION.findall(tag))
        return found

    def commands(self):
        """chanctl: the first word of each entry in a COMMANDS section
        (other than CONTROL COMMANDS)."""
        return {tag.split()[0] for tag in self.tags(r"(?<!CONTROL )COMMANDS")
                if tag.split()}

    def synopsis_commands(self, program):
        """The commands that the SYNOPSIS shows: the bold word after
        'program' at the start of a line."""
        found = set()
        for s in self._sections(r"^SYNOPSIS$"):
            for words in s[2]:
                if len(words) > 1 and words[0] == program:
                    found.add(words[1])
        return found

    def ctl_commands(self):
        """Control commands named in bold in the CONTROL COMMANDS section:
        module/verb words, and the first word of each entry."""
        named = set(self.bold(r"CONTROL COMMANDS"))
        documented = {w for w in named if CTL_COMMAND.match(w)}
        documented |= {tag.split()[0] for tag in self.tags(r"CONTROL COMMANDS")
                       if tag.split()}
        return named, documented


def help_text(binary):
    out = subprocess.run([binary, "--help"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True,
                         check=False, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("%s --help exited %d: %s"
                           % (binary, out.returncode, out.stderr.strip()))
    return out.stdout


def help_commands(text):
    """Commands listed by --help: the first word of each indented line
    under a "... commands ...:" heading, up to the next blank line."""
    found = set()
    in_list = False
    for line in text.splitlines():
        if not line.strip():
            in_list = False
        elif not line[0].isspace():
            in_list = line.rstrip().endswith(":") and "commands" in line
        elif in_list:
            m = re.match(r"^  ([a-z][a-z0-9-]*)(\s|$)", line)
            if m:
                found.add(m.group(1))
    return found


def source_ctl_commands(srcdir, subdir):
    """Control commands a daemon registers, from lib/ and 'subdir'."""
    found = set()
    for path in sorted(glob.glob(os.path.join(srcdir, "lib", "*.c"))
                       + glob.glob(os.path.join(srcdir, subdir, "*.c"))):
        with open(path, encoding="utf-8", errors="replace") as f:
            found.update(REGISTER.findall(f.read()))
    return found


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def compare(self, program, kind, have, have_where, want, want_where):
        """Every item of 'have' must be in 'want'."""
        for item in sorted(have):
            if item in want:
                self.passed += 1
            else:
                self.failed += 1
                print("FAIL: %s: %s %s is in %s but not in %s"
                      % (program, kind, item, have_where, want_where))


def main(argv):
    if len(argv) not in (2, 3) or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: %s BUILD_DIR [SRCDIR]\n" % argv[0])
        return 2
    builddir = argv[1]
    srcdir = (argv[2] if len(argv) == 3
              else os.path.join(os.path.dirname(os.path.abspath(argv[0])),
                                "..", ".."))
    check = Checker()

    for program, binary, ctl_dir in PROGRAMS:
        binary = os.path.join(builddir, binary)
        manpath = os.path.join(srcdir, "doc", program + ".8")
        man_name = "doc/%s.8" % program
        try:
            text = help_text(binary)
            man = ManPage(manpath)
        except (OSError, RuntimeError, subprocess.SubprocessError) as e:
            print("manpages: cannot check %s: %s" % (program, e))
            return 2

        opts = {"--" + o for o in LONG_OPTION.findall(text)}
        man_opts = {"--" + o for o in man.options()}
        check.compare(program, "option", opts, "--help",
                      man_opts, man_name + " (OPTIONS)")
        check.compare(program, "option", man_opts, man_name + " (OPTIONS)",
                      opts, "--help")

        cmds = help_commands(text)
        if cmds or man.commands():
            man_cmds = man.commands()
            synopsis = man.synopsis_commands(program)
            check.compare(program, "command", cmds, "--help",
                          man_cmds, man_name + " (COMMANDS)")
            check.compare(program, "command", cmds, "--help",
                          synopsis, man_name + " (SYNOPSIS)")
            check.compare(program, "command", man_cmds,
                          man_name + " (COMMANDS)", cmds, "--help")
            check.compare(program, "command", synopsis,
                          man_name + " (SYNOPSIS)", cmds, "--help")

        if ctl_dir:
            registered = source_ctl_commands(srcdir, ctl_dir)
            named, documented = man.ctl_commands()
            check.compare(program, "control command", registered,
                          "the source (%s/, lib/)" % ctl_dir,
                          named, man_name + " (CONTROL COMMANDS)")
            check.compare(program, "control command", documented,
                          man_name + " (CONTROL COMMANDS)",
                          registered, "the source (%s/, lib/)" % ctl_dir)

    print("manpages: %d passed, %d failed" % (check.passed, check.failed))
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
