# The xmpp part of the interop environment (under construction).
# shellcheck shell=bash
xmpp_packages() { :; }
xmpp_up() { echo '{}' >"$CW_DIR/describe/xmpp.json"; }
xmpp_down() { cw_stop_all xmpp; }
