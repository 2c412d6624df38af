#!/bin/sh
# Writes the access settings from RTMP_AUTH* and the recording settings from RTMP_RECORD*, prunes
# old recordings (now and every 10 minutes while recording is on), then runs nginx in the
# foreground as PID 1.
#   RTMP_AUTH=on|off               on (default): publishing to live/<stream> needs ?key=<that
#                                  stream's key>, playing an address in RTMP_PLAY_ALLOW
#   RTMP_PUBLISH_KEYS_FILE=/etc/nginx-rtmp/auth/publish-keys  a key per stream, lines
#                                  "<stream> <key>" (stream 1-32 of a-z 0-9 -; blank and # lines
#                                  skipped): a listed stream takes its own key only
#   RTMP_PUBLISH_KEY_FILE=/etc/nginx-rtmp/auth/publish-key    one key for every stream not listed
#                                  there (the single key of before); at least one of the two files
#                                  Keys: 16-128 of A-Z a-z 0-9 . _ ~ -, compared case-sensitively.
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
keys_file=${RTMP_PUBLISH_KEYS_FILE:-/etc/nginx-rtmp/auth/publish-keys}
play_allow=${RTMP_PLAY_ALLOW:-127.0.0.1}
cr=$(printf '\r')
blank=$(printf ' \t')

# A key as a PCRE that matches only itself, case and all ('.' is its one special character).
key_pattern() { printf '%s' "$1" | sed 's/[.]/[.]/g'; }
valid_key() { printf '%s' "$1" | grep -Eqx '[A-Za-z0-9._~-]{16,128}'; }

# The nginx map from "<stream>:<key>" (on_publish's name and the publisher's ?key=) to 1 when that
# key may publish that stream: each listed stream's own key, and the shared key for the others.
# Regexes, not map strings: nginx compares a map's strings without regard to case.
publish_key_map() {
  echo 'map "$arg_name:$arg_key" $rtmp_publish_key_ok {'
  echo '    default 0;'
  listed=''
  if [ -r "$keys_file" ]; then
    line_number=0
    while IFS="$blank" read -r stream stream_key rest || [ -n "$stream" ]; do
      line_number=$((line_number + 1))
      stream_key=${stream_key%"$cr"}
      case "$stream" in '' | '#'*) continue ;; esac
      where="nginx-rtmp: RTMP_PUBLISH_KEYS_FILE=$keys_file line $line_number"
      if ! printf '%s' "$stream" | grep -Eqx '[a-z0-9-]{1,32}' || [ -n "${rest%"$cr"}" ]; then
        echo "$where: expected '<stream> <key>' with a stream name of 1-32 of a-z 0-9 -" >&2
        exit 64
      fi
      if ! valid_key "$stream_key"; then
        echo "$where (stream $stream): the key must be 16-128 characters of A-Z a-z 0-9 . _ ~ -" >&2
        exit 64
      fi
      case "|$listed|" in
        *"|$stream|"*)
          echo "$where: stream $stream is listed twice" >&2
          exit 64
          ;;
      esac
      listed=${listed:+$listed|}$stream
      printf '    "~^%s:%s$" 1;\n' "$stream" "$(key_pattern "$stream_key")"
    done <"$keys_file"
  fi
  if [ -z "$listed" ] && [ ! -r "$key_file" ]; then
    echo "nginx-rtmp: no publish key: RTMP_PUBLISH_KEY_FILE=$key_file is not a readable file and RTMP_PUBLISH_KEYS_FILE=$keys_file lists no stream (or set RTMP_AUTH=off)" >&2
    exit 64
  fi
  if [ -r "$key_file" ]; then
    key=$(tr -d '\r\n' <"$key_file")
    if ! valid_key "$key"; then
      echo "nginx-rtmp: RTMP_PUBLISH_KEY_FILE=$key_file: the key must be 16-128 characters of A-Z a-z 0-9 . _ ~ -" >&2
      exit 64
    fi
    printf '    "~^%s[^:]+:%s$" 1;\n' "${listed:+(?!(?:$listed):)}" "$(key_pattern "$key")"
  fi
  echo '}'
}

case "$auth" in
  on)
    publish_key_map >"$state/auth-http.conf"
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
