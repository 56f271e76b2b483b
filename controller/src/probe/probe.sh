# moor host probe, version 1. Read-only: it changes nothing on the host.
# Run as `sh -s -- AGENT_IDS KIND` with this text on stdin (AGENT_IDS: the agent
# directories moor expects, separated by spaces, or empty; KIND: vm or hdinsight); prints sections `@@moor NAME`
# followed by raw command output, which the controller parses. Everything runs
# inside main() with stdin from /dev/null, so no command can swallow the rest
# of the script.
main() {
export LC_ALL=C
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
t() { if command -v timeout >/dev/null 2>&1; then timeout "$@"; else shift; "$@"; fi; }
s() { printf '\n@@moor %s\n' "$1"; }
have() { command -v "$1" >/dev/null 2>&1; }
# cat without a process: the probe's time is mostly process start-ups.
show() { [ -r "$1" ] || return 1; while IFS= read -r l || [ -n "$l" ]; do printf '%s\n' "$l"; done < "$1"; }

printf '@@moor-probe 1\n'
s uname; uname -m -r
s os-release; show /etc/os-release || show /usr/lib/os-release
s hostname; show /proc/sys/kernel/hostname
s machine-id; show /etc/machine-id
s user; id
s home; printf '%s\n' "$HOME"
s df-home; df -Pk "$HOME" 2>/dev/null
s meminfo; n=0; while IFS= read -r l && [ $n -lt 3 ]; do printf '%s\n' "$l"; n=$((n+1)); done < /proc/meminfo
s cpu; nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo; grep -m1 '^model name' /proc/cpuinfo
s addrs; ip -o addr show 2>/dev/null || hostname -I 2>/dev/null

s docker
sock=/var/run/docker.sock
have docker && echo "cli=$(command -v docker)"
if [ -S "$sock" ]; then
  echo "socket=$sock"
  echo "socket_group=$(stat -c %G "$sock" 2>/dev/null)"
  if [ -r "$sock" ] && [ -w "$sock" ]; then echo access=yes; else echo access=no; fi
fi
if have docker; then
  v=$(t 10 docker version --format '{{.Server.Version}}' 2>&1); rc=$?
  echo "cli_rc=$rc"
  echo "server=$(printf '%s' "$v" | tr '\n' ' ')"
elif [ -S "$sock" ] && [ -w "$sock" ] && have curl; then
  v=$(t 10 curl -sf --unix-socket "$sock" http://docker/version) && echo cli_rc=0 && \
    printf 'server_json=%s\n' "$v"
elif [ -S "$sock" ] && [ -w "$sock" ] && have python3; then
  t 10 python3 - "$sock" <<'PY' 2>/dev/null
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
body = data.split(b"\r\n\r\n", 1)[1]
print("cli_rc=0")
print("server=" + json.loads(body)["Version"])
PY
fi

s conda
for c in conda mamba micromamba; do have "$c" && echo "path=$c:$(command -v "$c")"; done
for d in /anaconda /opt/conda "$HOME/miniconda3" "$HOME/anaconda3" /usr/bin/anaconda; do
  if [ -x "$d/bin/conda" ] || [ -x "$d/bin/mamba" ] || [ -x "$d/bin/micromamba" ]; then
    echo "dir=$d:$(ls "$d/conda-meta" 2>/dev/null | grep -m1 '^conda-[0-9]')"
  fi
done

s python
for p in python3 python; do have "$p" && echo "path=$(command -v "$p")"; done
# The interpreter's file name usually carries its version (python3.11); ask
# the interpreter only when it does not (a start-up costs tens of ms).
for p in python3 python; do
  if have "$p"; then
    real=$(readlink -f "$(command -v "$p")")
    case "${real##*/}" in
      python[0-9].[0-9]*) echo "version=Python ${real##*/python}" ;;
      *) echo "version=$("$p" --version 2>&1)" ;;
    esac
    break
  fi
done

s nvidia
if have nvidia-smi; then
  echo "path=$(command -v nvidia-smi)"
  out=$(t 15 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1); echo "rc=$?"
  printf '%s\n' "$out" | while IFS= read -r line; do echo "gpu=$line"; done
fi

s sudo
if have sudo; then
  if t 5 sudo -n true >/dev/null 2>&1; then echo passwordless=yes; else echo passwordless=no; fi
else
  echo passwordless=absent
fi

s spark
submit=
for p in spark-submit /usr/hdp/current/spark2-client/bin/spark-submit /usr/hdp/current/spark3-client/bin/spark-submit "${SPARK_HOME:-/nonexistent}/bin/spark-submit"; do
  if have "$p"; then submit=$(command -v "$p"); echo "submit=$submit"; break; fi
done
# A head node (KIND hdinsight): Spark's version, YARN's nodes, HDFS's default
# file system. Each starts a JVM (seconds): they run at once, each bounded.
if [ "$2" = hdinsight ]; then
  yarn=; hdfs=
  for p in yarn /usr/hdp/current/hadoop-yarn-client/bin/yarn; do
    if have "$p"; then yarn=$(command -v "$p"); break; fi
  done
  for p in hdfs /usr/hdp/current/hadoop-hdfs-client/bin/hdfs; do
    if have "$p"; then hdfs=$(command -v "$p"); break; fi
  done
  tmp=$(mktemp -d 2>/dev/null) || tmp=
  if [ -n "$tmp" ]; then
    [ -n "$submit" ] && { t 20 "$submit" --version >"$tmp/spark" 2>&1; echo $? >"$tmp/spark.rc"; } &
    [ -n "$yarn" ] && { t 15 "$yarn" node -list -all >"$tmp/yarn" 2>&1; echo $? >"$tmp/yarn.rc"; } &
    [ -n "$hdfs" ] && { t 15 "$hdfs" getconf -confKey fs.defaultFS >"$tmp/hdfs" 2>&1; echo $? >"$tmp/hdfs.rc"; } &
    wait
  fi
  s spark-version; show "$tmp/spark.rc"; show "$tmp/spark"
  s yarn
  [ -n "$yarn" ] && echo "path=$yarn" && echo "rc=$(show "$tmp/yarn.rc")"
  s yarn-out; show "$tmp/yarn"
  s hdfs
  [ -n "$hdfs" ] && echo "path=$hdfs" && echo "rc=$(show "$tmp/hdfs.rc")"
  s hdfs-out; show "$tmp/hdfs"
  [ -n "$tmp" ] && rm -rf "$tmp"
  s python-cluster
  for p in /usr/bin/anaconda/bin/python3 /usr/bin/anaconda/bin/python /usr/bin/anaconda/envs/*/bin/python3 /usr/bin/miniforge/envs/*/bin/python3; do
    [ -x "$p" ] && echo "python=$p:$(t 5 "$p" --version 2>&1)"
  done
  if [ -n "$submit" ]; then
    home=$(dirname "$(dirname "$(readlink -f "$submit")")")
    grep -h '^[^#]*PYSPARK_PYTHON=' "${SPARK_HOME:-$home}/conf/spark-env.sh" 2>/dev/null | sed 's/^/spark_env=/'
  fi
fi
s decompressors
for c in xz gzip; do have "$c" && echo "$c"; done
s agent
# $1: the agent directories moor may have installed here (one per
# architecture it carries), separated by spaces; the first one present answers.
# Split on spaces only, never glob-expanded.
set -f
for id in $1; do
  a="$HOME/.moor/agent/$id/moor-agent"
  if [ -x "$a" ]; then t 10 "$a" hello 2>&1; break; fi
done
set +f
s claim
cat "$HOME/.moor/claim" 2>/dev/null
printf '\n@@moor end\n'
}
main "$@" </dev/null
