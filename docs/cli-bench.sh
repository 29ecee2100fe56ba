#!/bin/bash
# usage: bench.sh LABEL N CNM_CMD...   (CNM_CMD e.g. "dotnet /path/cnm.dll")
# Times cnm --help, network ls, network connect/disconnect in a private host namespace; prints medians (ms).
set -u
label=$1; n=$2; shift 2; cnm=("$@")
root=$(mktemp -d /tmp/cnmfast/run-XXXXXX)
touch $root/host && unshare --net=$root/host true && nsenter --net=$root/host ip link set lo up
g=(--state-dir $root/state --run-dir $root/run --host-netns $root/host)
now() { date +%s%N; }
med() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1e6}'; }
"${cnm[@]}" "${g[@]}" network create --subnet 10.77.0.0/24 web >/dev/null || exit 1
"${cnm[@]}" "${g[@]}" sandbox create c1 >/dev/null || exit 1
: > $root/help; : > $root/ls; : > $root/conn; : > $root/disc; : > $root/sls
for i in $(seq $n); do
  t=$(now); "${cnm[@]}" --help >/dev/null; echo $(( $(now)-t )) >> $root/help
  t=$(now); "${cnm[@]}" "${g[@]}" network ls >/dev/null || echo "ls failed" >&2; echo $(( $(now)-t )) >> $root/ls
  t=$(now); "${cnm[@]}" "${g[@]}" sandbox inspect c1 >/dev/null || echo "inspect failed" >&2; echo $(( $(now)-t )) >> $root/sls
  t=$(now); "${cnm[@]}" "${g[@]}" network connect web c1 || echo "connect failed" >&2; echo $(( $(now)-t )) >> $root/conn
  t=$(now); "${cnm[@]}" "${g[@]}" network disconnect web c1 || echo "disconnect failed" >&2; echo $(( $(now)-t )) >> $root/disc
done
echo "$label n=$n help_ms=$(med < $root/help) ls_ms=$(med < $root/ls) sandbox_inspect_ms=$(med < $root/sls) connect_ms=$(med < $root/conn) disconnect_ms=$(med < $root/disc)"
"${cnm[@]}" "${g[@]}" sandbox rm c1 >/dev/null; "${cnm[@]}" "${g[@]}" network rm web >/dev/null
umount $root/host 2>/dev/null; rm -rf $root
