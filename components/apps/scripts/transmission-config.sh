#!/bin/sh
# transmission-config.sh: the config-import init container of the Transmission pod (phase 6). Copies the brew
# daemon's carried settings (settings.json, torrents/, resume/: staged on the share by the host step
# components/host/scripts/transmission-move.sh) into /config, once: only when /config holds no settings.json,
# so a config the cluster's daemon already has is never replaced (a restart, a re-raise of the target).
#
# Environment: CARRIED (the staged directory, read-only), CONFIG (the config volume), OWNER (uid:gid the image's
# daemon runs as; linuxserver's init chowns /config to it too).
# Exit: 0 when /config has a config afterwards or there is nothing to carry (the image writes its defaults); 1
# when the copy failed (the pod does not start on half a config: the next start tries again, /config is left
# without settings.json so it does).
set -eu

CARRIED=${CARRIED:?CARRIED is not set}
CONFIG=${CONFIG:?CONFIG is not set}
OWNER=${OWNER:-}
log() { printf 'config-import: %s\n' "$*"; }

if [ -e "$CONFIG/settings.json" ]; then
    log "$CONFIG already holds settings.json: kept as it is (nothing carried)"
    exit 0
fi
if [ ! -f "$CARRIED/settings.json" ]; then
    log "no carried settings at $CARRIED: the daemon starts with the image's defaults"
    exit 0
fi
for dir in torrents resume; do
    if [ -d "$CARRIED/$dir" ]; then
        rm -rf "${CONFIG:?}/$dir.import"
        cp -R "$CARRIED/$dir" "$CONFIG/$dir.import"
        rm -rf "${CONFIG:?}/$dir"
        mv "$CONFIG/$dir.import" "$CONFIG/$dir"
    fi
done
# settings.json last, through a temp file: its presence is what says the import is done
cp "$CARRIED/settings.json" "$CONFIG/settings.json.import"
if [ -n "$OWNER" ]; then
    chown -R "$OWNER" "$CONFIG" 2>/dev/null || log "cannot chown $CONFIG to $OWNER (the image's init does it)"
fi
mv "$CONFIG/settings.json.import" "$CONFIG/settings.json"
count=$(find "$CONFIG/torrents" -name '*.torrent' 2>/dev/null | wc -l | tr -d ' ')
log "carried the brew daemon's settings and $count torrents into $CONFIG"
