#!/bin/sh
# Instructions per operation on the scripts' hot paths, counted by cachegrind (they repeat to
# within a few instructions, unlike wall clock on a shared machine).
#
#   cargo bench --bench scripts --no-run      # prints the bench binary's path
#   benches/hot_paths.sh target/release/deps/scripts-<hash>
#
# Each operation (see HOT_OPS in benches/scripts.rs) runs 10,000 times a frame (100 scripts, 100
# times each: short callbacks, as the budget hook stays off for them); the count is
# (instructions of 25 frames - instructions of 5 frames) / 200,000, minus the empty loop's.
set -eu
BIN=$1
count() {
    for frames in 5 25; do
        LUNAR_PROFILE=hot LUNAR_OP=$1 LUNAR_FRAMES=$frames LUNAR_WATCHDOG=${2:-auto} \
            valgrind --tool=cachegrind \
            --cache-sim=no --cachegrind-out-file=/dev/null "$BIN" --bench 2>&1 \
            | sed -n 's/.*I *refs: *//p' | tr -d ,
    done | { read -r five; read -r twentyfive; echo $(( (twentyfive - five) / 20 )); }
}
loop=$(count loop)
printf '%-12s %14s\n' operation instructions
printf '%-12s %14s\n' "loop (empty)" "$(( loop / 10000 ))"
for op in entity_get number_get number_set string_get method_call nested_get nested_set vec3_add \
    table_add; do
    total=$(count $op)
    printf '%-12s %14s\n' "$op" "$(( (total - loop) / 10000 ))"
done
# glam in a Rust system, less the same loop without the addition.
printf '%-12s %14s\n' glam_add "$(( ($(count glam_add) - $(count rust_loop)) / 10000 ))"
# Per entity of a query walk (the frame's own cost spread over its 10,000 entities). One callback
# walking 10,000 entities runs long enough under valgrind for the budget's watchdog to set the
# count hook partway, at a point that depends on timing: counted with the hook set throughout
# (LUNAR_WATCHDOG=off), so that the count repeats.
printf '%-12s %14s\n' query_each "$(( $(count query_each off) / 10000 ))"
