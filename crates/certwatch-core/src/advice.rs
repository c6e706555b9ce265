//! Setup advice: the zone-file lines an operator adds, and pin-strength warnings.

use crate::endpoint::tlsa_owner;
use crate::tlsa::Tlsa;

/// The zone-file line `_<port>._tcp.<host>. <ttl> IN TLSA <record>` (absolute owner name).
///
/// ```
/// let rec: certwatch_core::Tlsa = "3 1 1 ab".parse().unwrap();
/// assert_eq!(
///     certwatch_core::tlsa_zone_line("xmpp.example.", 5269, 300, &rec),
///     "_5269._tcp.xmpp.example. 300 IN TLSA 3 1 1 ab"
/// );
/// ```
pub fn tlsa_zone_line(host: &str, port: u16, ttl: u32, record: &Tlsa) -> String {
    format!("{}. {ttl} IN TLSA {record}", tlsa_owner(host, port))
}
