//! Faults a simulated fabric can be given, and the control language that names them.
//!
//! One line per command, words separated by spaces; the same text is what [`Fault`]'s `Display`
//! prints, so `faults` output can be pasted back:
//!
//! ```text
//! link-down A B            link-up A B           the cable between devices A and B
//! bgp-down A B             bgp-up A B            A shuts its BGP session to B (admin stop)
//! device-down D            device-up D           D's agent stops answering (unreachable)
//! reboot D                                       sysUpTime and counters restart; peers' sessions flap
//! counter-wrap D [32|64]                         D's running counters jump to ~10 s before they wrap
//! slow D LATENCY                                 every answer from D waits LATENCY more (0s: normal)
//! malformed D MODE                               MODE: wrong-types, non-increasing, truncated, off
//! clear all | clear D                            every fault, or every fault touching D
//! faults                                         the faults in force, `;`-separated
//! help
//! ```

use super::codec::Malformed;
use std::fmt;
use std::time::Duration;

/// One fault, by device names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The cable between `a` and `b` loses carrier: both ports oper down, LLDP neighbours gone,
    /// OSPF neighbours gone, BGP sessions Active.
    LinkDown { a: String, b: String },
    /// `a` administratively shuts its BGP session to `b`: Idle at `a`, Active at `b`, last
    /// error cease/administrative shutdown at both.
    BgpDown { a: String, b: String },
    /// The device's agent stops answering; the device itself keeps forwarding.
    DeviceDown { device: String },
    /// An event, not a state: sysUpTime and every counter restart from zero (from their base),
    /// and every BGP neighbour sees its established session flap.
    Reboot { device: String },
    /// An event: the device's running Counter32s (or Counter64s) jump to just before their wrap
    /// point, the jump marked in ifCounterDiscontinuityTime.
    CounterWrap { device: String, bits: u8 },
    /// Every response waits `latency` more (zero: back to normal).
    Slow { device: String, latency: Duration },
    /// Responses come back distorted.
    Malformed { device: String, mode: Malformed },
}

impl Fault {
    /// Events happen once; they are not in force afterwards and cannot be cleared.
    pub fn is_event(&self) -> bool {
        matches!(self, Fault::Reboot { .. } | Fault::CounterWrap { .. })
    }

    /// The devices the fault names.
    pub fn devices(&self) -> Vec<&str> {
        match self {
            Fault::LinkDown { a, b } | Fault::BgpDown { a, b } => vec![a, b],
            Fault::DeviceDown { device }
            | Fault::Reboot { device }
            | Fault::CounterWrap { device, .. }
            | Fault::Slow { device, .. }
            | Fault::Malformed { device, .. } => vec![device],
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::LinkDown { a, b } => write!(f, "link-down {a} {b}"),
            Fault::BgpDown { a, b } => write!(f, "bgp-down {a} {b}"),
            Fault::DeviceDown { device } => write!(f, "device-down {device}"),
            Fault::Reboot { device } => write!(f, "reboot {device}"),
            Fault::CounterWrap { device, bits } => write!(f, "counter-wrap {device} {bits}"),
            Fault::Slow { device, latency } => write!(f, "slow {device} {}", humantime::format_duration(*latency)),
            Fault::Malformed { device, mode } => write!(f, "malformed {device} {}", mode.as_str()),
        }
    }
}

/// One control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Inject(Fault),
    /// Takes the named fault back (`link-up`, `bgp-up`, `device-up`, `slow D 0s`,
    /// `malformed D off`).
    Clear(Fault),
    ClearAll,
    ClearDevice(String),
    /// Lists the faults in force.
    Faults,
    Help,
}

/// The control language in one line, for `help`.
pub const HELP: &str = "commands: link-down|link-up A B; bgp-down|bgp-up A B; device-down|device-up D; reboot D; \
                        counter-wrap D [32|64]; slow D LATENCY; malformed D wrong-types|non-increasing|truncated|off; \
                        clear all|D; faults; help";

impl std::str::FromStr for Command {
    type Err = String;

    fn from_str(line: &str) -> Result<Self, Self::Err> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&verb, args)) = words.split_first() else { return Err("empty command".to_string()) };
        let arity = |n: usize, usage: &str| {
            if args.len() == n { Ok(()) } else { Err(format!("{verb}: usage: {usage}")) }
        };
        let s = |i: usize| args[i].to_string();
        let cmd = match verb {
            "link-down" | "link-up" | "bgp-down" | "bgp-up" => {
                arity(2, &format!("{verb} DEVICE DEVICE"))?;
                if args[0] == args[1] {
                    return Err(format!("{verb}: {} and {} are the same device", args[0], args[1]));
                }
                let fault = if verb.starts_with("link") {
                    Fault::LinkDown { a: s(0), b: s(1) }
                } else {
                    Fault::BgpDown { a: s(0), b: s(1) }
                };
                if verb.ends_with("down") { Command::Inject(fault) } else { Command::Clear(fault) }
            }
            "device-down" | "device-up" => {
                arity(1, &format!("{verb} DEVICE"))?;
                let fault = Fault::DeviceDown { device: s(0) };
                if verb == "device-down" { Command::Inject(fault) } else { Command::Clear(fault) }
            }
            "reboot" => {
                arity(1, "reboot DEVICE")?;
                Command::Inject(Fault::Reboot { device: s(0) })
            }
            "counter-wrap" => {
                let bits = match args {
                    [_] => 32,
                    [_, b] => b
                        .parse()
                        .ok()
                        .filter(|b| *b == 32 || *b == 64)
                        .ok_or_else(|| format!("counter-wrap: width {b:?} is not 32 or 64"))?,
                    _ => return Err("counter-wrap: usage: counter-wrap DEVICE [32|64]".to_string()),
                };
                Command::Inject(Fault::CounterWrap { device: s(0), bits })
            }
            "slow" => {
                arity(2, "slow DEVICE LATENCY (e.g. 500ms; 0s for normal)")?;
                let latency: Duration = args[1]
                    .parse::<humantime::Duration>()
                    .map_err(|e| format!("slow: latency {:?}: {e}", args[1]))?
                    .into();
                let fault = Fault::Slow { device: s(0), latency };
                if latency.is_zero() { Command::Clear(fault) } else { Command::Inject(fault) }
            }
            "malformed" => {
                arity(2, "malformed DEVICE wrong-types|non-increasing|truncated|off")?;
                if args[1] == "off" {
                    Command::Clear(Fault::Malformed { device: s(0), mode: Malformed::WrongTypes })
                } else {
                    let mode = args[1].parse().map_err(|e| format!("malformed: {e}"))?;
                    Command::Inject(Fault::Malformed { device: s(0), mode })
                }
            }
            "clear" => {
                arity(1, "clear all|DEVICE")?;
                if args[0] == "all" { Command::ClearAll } else { Command::ClearDevice(s(0)) }
            }
            "faults" => {
                arity(0, "faults")?;
                Command::Faults
            }
            "help" => Command::Help,
            other => return Err(format!("unknown command {other:?}; {HELP}")),
        };
        Ok(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Command, String> {
        s.parse()
    }

    #[test]
    fn commands_parse_and_faults_print_back() {
        let link = Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() };
        assert_eq!(parse("link-down leaf001 spine1"), Ok(Command::Inject(link.clone())));
        assert_eq!(parse("  link-up   leaf001 spine1 "), Ok(Command::Clear(link.clone())));
        assert_eq!(parse("device-down leaf002"), Ok(Command::Inject(Fault::DeviceDown { device: "leaf002".into() })));
        assert_eq!(parse("reboot spine1"), Ok(Command::Inject(Fault::Reboot { device: "spine1".into() })));
        assert_eq!(parse("clear all"), Ok(Command::ClearAll));
        assert_eq!(parse("clear leaf001"), Ok(Command::ClearDevice("leaf001".into())));
        assert_eq!(
            parse("counter-wrap leaf001 64"),
            Ok(Command::Inject(Fault::CounterWrap { device: "leaf001".into(), bits: 64 }))
        );
        assert_eq!(
            parse("slow leaf001 0s"),
            Ok(Command::Clear(Fault::Slow { device: "leaf001".into(), latency: Duration::ZERO }))
        );
        let slow = Fault::Slow { device: "leaf001".into(), latency: Duration::from_millis(250) };
        let malformed = Fault::Malformed { device: "leaf003".into(), mode: Malformed::NonIncreasing };
        for f in [link, Fault::BgpDown { a: "spine2".into(), b: "leaf004".into() }, slow, malformed] {
            assert_eq!(parse(&f.to_string()), Ok(Command::Inject(f.clone())), "{f}");
        }
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let err = |s: &str| parse(s).unwrap_err();
        assert_eq!(err(""), "empty command");
        assert_eq!(err("link-down leaf001"), "link-down: usage: link-down DEVICE DEVICE");
        assert_eq!(err("link-down leaf001 leaf001"), "link-down: leaf001 and leaf001 are the same device");
        assert!(err("explode spine1").starts_with("unknown command \"explode\"; commands:"));
        assert_eq!(err("counter-wrap leaf001 16"), "counter-wrap: width \"16\" is not 32 or 64");
        assert!(err("slow leaf001 fast").starts_with("slow: latency \"fast\": "));
        assert!(err("malformed leaf001 garbled").contains("unknown malformed mode \"garbled\""));
        assert_eq!(err("clear"), "clear: usage: clear all|DEVICE");
    }
}
