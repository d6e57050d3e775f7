#!/usr/bin/env bash
# Instructions per operation of the userdata benchmark cases, counted by callgrind: unlike
# wall-clock time, these counts repeat exactly on a shared, noisy machine.
#
#   benches/instructions.sh        (needs valgrind: apt-get install -y valgrind)
#
# Each case runs twice, with 0 and with N loop iterations; the difference over N is the cost of
# one operation, without start-up and set-up.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-20000}

bench=$(cargo bench --bench userdata --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "userdata" and m.get("executable"):
        print(m["executable"])')

count() {
    LUNAR_BENCH_CASE="$1" LUNAR_BENCH_ITERS="$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bench" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

per_op() {
    local base full
    base=$(count "$1" 0)
    full=$(count "$1" "$N")
    echo $(((full - base) / N))
}

printf '%-18s %10s %18s %10s %8s\n' operation lua_table mlua_hand_written derived ratio
for op in field_get field_set method_mut_heal method_get_health meta_add; do
    table=$(per_op "$op/lua_table")
    hand=$(per_op "$op/mlua_hand_written")
    derived=$(per_op "$op/derived")
    ratio=$(python3 -c "print(f'{$derived / $hand:.3f}')")
    printf '%-18s %10s %18s %10s %8s\n' "$op" "$table" "$hand" "$derived" "$ratio"
done
echo "(instructions per operation; ratio = derived / hand-written)"
echo
printf '%-18s %10s %8s\n' live_value derived "/ scalar_get"
scalar=$(per_op "scalar_get/live")
for op in scalar_get element_get element_set list_len enum_field_get; do
    live=$(per_op "$op/live")
    ratio=$(python3 -c "print(f'{$live / $scalar:.3f}')")
    printf '%-18s %10s %8s\n' "$op" "$live" "$ratio"
done
echo "(instructions per operation on a derived value; ratio = operation / scalar field get)"
