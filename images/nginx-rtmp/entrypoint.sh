#!/bin/sh
# Writes the access settings from RTMP_AUTH* and the recording settings from RTMP_RECORD*, prunes
# old recordings (now and every 10 minutes while recording is on), then runs nginx in the
# foreground as PID 1.
#   RTMP_AUTH=on|off               on (default): publishing needs ?key=<the key in
#                                  RTMP_PUBLISH_KEY_FILE>, playing an address in RTMP_PLAY_ALLOW
#   RTMP_PUBLISH_KEY_FILE=/etc/nginx-rtmp/auth/publish-key   16-128 of A-Z a-z 0-9 . _ ~ -
#   RTMP_PLAY_ALLOW="127.0.0.1"    addresses or CIDRs (space-separated) that may play
set -eu
state=/var/lib/nginx-rtmp
# The state folder may be a fresh, empty volume (a read-only root file system mounts one there).
mkdir -p "$state/tmp"
record=${RTMP_RECORD:-off}
dir=${RTMP_RECORD_DIR:-/recordings}
keep_hours=${RTMP_RECORD_KEEP_HOURS:-24}

case "$keep_hours" in
  '' | *[!0-9]* | 0)
    echo "nginx-rtmp: RTMP_RECORD_KEEP_HOURS=$keep_hours: expected a whole number of hours > 0" >&2
    exit 64
    ;;
esac

auth=${RTMP_AUTH:-on}
key_file=${RTMP_PUBLISH_KEY_FILE:-/etc/nginx-rtmp/auth/publish-key}
play_allow=${RTMP_PLAY_ALLOW:-127.0.0.1}

case "$auth" in
  on)
    if [ ! -r "$key_file" ]; then
      echo "nginx-rtmp: RTMP_PUBLISH_KEY_FILE=$key_file is not a readable file (or set RTMP_AUTH=off)" >&2
      exit 64
    fi
    key=$(tr -d '\r\n' <"$key_file")
    if ! printf '%s' "$key" | grep -Eqx '[A-Za-z0-9._~-]{16,128}'; then
      echo "nginx-rtmp: RTMP_PUBLISH_KEY_FILE=$key_file: the key must be 16-128 characters of A-Z a-z 0-9 . _ ~ -" >&2
      exit 64
    fi
    {
      echo "notify_method get;"
      echo "on_publish http://127.0.0.1:8080/auth/publish;"
      for address in $play_allow; do
        if ! printf '%s' "$address" | grep -Eqx '[0-9a-fA-F.:]+(/[0-9]{1,3})?'; then
          echo "nginx-rtmp: RTMP_PLAY_ALLOW: '$address' is not an address or CIDR" >&2
          exit 64
        fi
        echo "allow play $address;"
      done
      echo "deny play all;"
    } >"$state/auth.conf"
    printf 'map $arg_key $rtmp_publish_key_ok {\n    default 0;\n    "%s" 1;\n}\n' "$key" >"$state/auth-http.conf"
    ;;
  off)
    echo "nginx-rtmp: RTMP_AUTH=off: anyone may publish and play" >&2
    : >"$state/auth.conf"
    printf 'map $arg_key $rtmp_publish_key_ok {\n    default 1;\n}\n' >"$state/auth-http.conf"
    ;;
  *)
    echo "nginx-rtmp: RTMP_AUTH=$auth: expected on or off" >&2
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
