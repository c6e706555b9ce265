# The tor part of the interop environment (under construction).
# shellcheck shell=bash
tor_packages() { :; }
tor_up() { echo '{}' >"$CW_DIR/describe/tor.json"; }
tor_down() { cw_stop_all tor; }
