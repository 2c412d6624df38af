#!/bin/sh
# Writes the recording settings from RTMP_RECORD*, prunes old recordings (now and every
# 10 minutes while recording is on), then runs nginx in the foreground as PID 1.
set -eu
state=/var/lib/nginx-rtmp
record=${RTMP_RECORD:-off}
dir=${RTMP_RECORD_DIR:-/recordings}
keep_hours=${RTMP_RECORD_KEEP_HOURS:-24}

case "$keep_hours" in
  '' | *[!0-9]* | 0)
    echo "nginx-rtmp: RTMP_RECORD_KEEP_HOURS=$keep_hours: expected a whole number of hours > 0" >&2
    exit 64
    ;;
esac

case "$record" in
  off)
    echo "record off;" >"$state/record.conf"
    ;;
  all | video | audio | keyframes)
    if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
      echo "nginx-rtmp: RTMP_RECORD_DIR=$dir is not a writable directory (mount a volume there)" >&2
      exit 64
    fi
    printf 'record %s;\nrecord_path %s;\nrecord_unique on;\n' "$record" "$dir" >"$state/record.conf"
    prune() { find "$dir" -type f -name '*.flv' -mmin +$((keep_hours * 60)) -delete; }
    prune
    (while sleep 600; do prune; done) &
    echo "nginx-rtmp: recording '$record' to $dir, kept $keep_hours h" >&2
    ;;
  *)
    echo "nginx-rtmp: RTMP_RECORD=$record: expected off, all, video, audio or keyframes" >&2
    exit 64
    ;;
esac

exec nginx -e stderr -c /etc/nginx/nginx.conf "$@"
