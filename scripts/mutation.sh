#!/usr/bin/env bash
# Mutation testing, one module at a time, against that module's own test files (mutmut 3).
#
#   scripts/mutation.sh MODULE.py [MODULE2.py ...] -- TESTFILE [TESTFILE ...] [PYTEST ARGS ...]
#   scripts/mutation.sh fitscribe/uri.py -- tests/test_artifacts_local.py
#   scripts/mutation.sh fitscribe/search.py fitscribe/backends/sql/search.py -- tests/test_search_parser.py -k sqlite
#
# The work happens in a private copy (a temporary folder), never in this tree: the tracked and
# untracked (not ignored) files of the work tree are copied, or the commit named by
# MUTATION_REF (e.g. MUTATION_REF=HEAD) is exported. So your edits are tested, nothing in the
# repository is touched, and others' edits in a shared tree do not disturb the run.
#
# Environment:
#   MUTATION_REF=<commit>     mutate that commit instead of the work tree
#   MUTATION_ONLY=<globs>     mutant names to run, space-separated, e.g. 'fitscribe.uri.x_check_relative_path*'
#   MUTATION_JOBS=<n>         parallel test processes (default 1: be kind to shared machines)
#   MUTATION_KEEP=<folder>    keep the private copy there (to run `mutmut show NAME` in it later;
#                             running the script again with the same folder resumes: verdicts stand)
#   MUTATION_TIMEOUT=<x>      timeout multiplier (default 5.0, pyproject); a mutant that hangs costs
#                             x times its tests' time, so 1.5 saves hours on a loaded machine
#   PYTHON=<python>           interpreter with mutmut and the dev extra (default .venv/bin/python)
#   MUTATION_CHILDREN=1       child processes of the tests (subprocess of sys.executable, fork,
#                             multiprocessing) run the mutant too, and the functions only they call
#                             count for the test (scripts/mutation_children.py says how); for test
#                             files whose crash and fork cases run in children (the journal's)
#
# Output: the score (killed / total mutants reached by the tests) and the diff of each survivor.
# Kill a survivor with a test, or explain why it is equivalent. Caveats: only the pytest process
# runs the mutant (a subprocess imports the installed package; pointing it at the mutants breaks,
# as the mutated code needs mutmut's configuration), and mutmut runs, for each mutant, only the tests
# that called the mutated function in that process (threads included). So a survivor that only a
# subprocess-based test would catch is a blind spot, not proof, unless MUTATION_CHILDREN=1 (a child
# that drops PYTHONPATH from its environment stays blind). Check one by hand with
#   cd "$MUTATION_KEEP/mutants" && MUTANT_UNDER_TEST=<name> python -m pytest -x -p mutation_children <test files>
set -euo pipefail

repo="${MUTATION_REPO:-$(cd "$(dirname "$0")/.." && pwd)}"
python="${PYTHON:-$repo/.venv/bin/python}"
modules=()
while [[ $# -gt 0 && "$1" != "--" ]]; do modules+=("$1"); shift; done
[[ $# -gt 0 ]] && shift
if [[ ${#modules[@]} -eq 0 || $# -eq 0 ]]; then
    sed -n '2,6p' "$0" >&2
    exit 2
fi
"$python" -c "import mutmut" 2>/dev/null || { echo "mutmut is missing: pip install -e '.[dev]'" >&2; exit 2; }

work="${MUTATION_KEEP:-$(mktemp -d /tmp/fitscribe-mutation.XXXXXX)}"
mkdir -p "$work"
[[ -z "${MUTATION_KEEP:-}" ]] && trap 'rm -rf "$work"' EXIT
cd "$repo"
resume=""
if [[ -f "$work/mutants/mutmut-stats.json" ]]; then
    resume=1  # the same modules and tests as before: a changed selection would reset every verdict
    echo "resuming the run kept in $work" >&2
elif [[ -n "${MUTATION_REF:-}" ]]; then
    git archive "$MUTATION_REF" | tar -x -C "$work"
else
    git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -x -C "$work"
fi
for module in "${modules[@]}"; do
    [[ -f "$work/$module" ]] || { echo "no such module: $module" >&2; exit 2; }
done
if [[ -n "${MUTATION_CHILDREN:-}" ]]; then  # the pytest plugin, and the hook every child Python imports
    mkdir -p "$work/mutants"
    cp "$repo/scripts/mutation_children.py" "$work/mutants/mutation_children.py"
    cp "$repo/scripts/mutation_children.py" "$work/mutants/sitecustomize.py"
fi

# TOML arrays for the per-run keys (the fixed ones live in pyproject's [tool.mutmut]).
toml_list() { "$python" -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "$@"; }
only="$(toml_list "${modules[@]}")"
selection="$(toml_list "$@")"
"$python" - "$work/pyproject.toml" "$only" "$selection" "$resume" <<'EOF'
import os, re, sys
path, only, selection, resume = sys.argv[1:]
text = open(path, encoding="utf-8").read()
header = "[tool.mutmut]\n"
extra = f"only_mutate = {only}\npytest_add_cli_args_test_selection = {selection}\n"
if not resume:
    text = text.replace(header, header + extra) if header in text else text + "\n" + header + extra
if os.environ.get("MUTATION_CHILDREN") and '"mutation_children"' not in text:
    text = text.replace("pytest_add_cli_args = [", 'pytest_add_cli_args = ["-p", "mutation_children", ', 1)
if os.environ.get("MUTATION_TIMEOUT"):
    text = re.sub(r"(?m)^timeout_multiplier = .*$", f"timeout_multiplier = {float(os.environ['MUTATION_TIMEOUT'])}", text)
open(path, "w", encoding="utf-8").write(text)
EOF

cd "$work"
start=$(date +%s)
args=(run --max-children "${MUTATION_JOBS:-1}")
if [[ -n "${MUTATION_ONLY:-}" ]]; then read -r -a only_names <<< "$MUTATION_ONLY"; args+=("${only_names[@]}"); fi
"$python" -m mutmut "${args[@]}" > mutmut-run.log 2>&1 || { tail -c 4000 mutmut-run.log; exit 1; }
"$python" -m mutmut results --all true > results.txt 2>&1 || true
"$python" - "$(( $(date +%s) - start ))" "${modules[*]}" <<'EOF'
import collections, sys
seconds, modules = sys.argv[1:]
status = {}
for line in open("results.txt", encoding="utf-8"):
    name, sep, outcome = line.strip().rpartition(": ")
    if sep and name.startswith("fitscribe."):
        status[name] = outcome
counts = collections.Counter(status.values())
reached = sum(n for outcome, n in counts.items() if outcome not in ("no tests", "not checked"))  # not checked: left out by MUTATION_ONLY
print(f"{modules}: {counts.get('killed', 0)} killed of {reached} mutants the tests reach "
      f"({len(status)} in all) in {seconds} s; {dict(counts)}")
with open("survivors.txt", "w", encoding="utf-8") as out:
    out.writelines(f"{name}\n" for name, outcome in status.items() if outcome in ("survived", "suspicious", "timeout"))
EOF
while read -r name; do
    echo "=== $name"
    "$python" -m mutmut show "$name" 2>&1 | tail -n +2
done < survivors.txt
