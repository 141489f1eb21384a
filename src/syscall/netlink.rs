//! A small rtnetlink client: just what `linux.netDevices` needs (look a link up, list its
//! addresses, set it up or down, move it to another network namespace under a new name, add an
//! address). Messages are built and parsed by hand from the uapi layouts (`linux/netlink.h`,
//! `linux/rtnetlink.h`, `linux/if_link.h`, `linux/if_addr.h`); no crate is pulled in for five
//! requests, and nothing here needs `unsafe`: the socket calls go through nix.
//!
//! A netlink socket acts on the network namespace it was created in, for its whole life. A
//! socket for another namespace is made by entering it with this thread only for the `socket`
//! call ([`RouteSocket::open_in`]); hutch's own namespaces are otherwise never changed.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sched::CloneFlags;
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType};

// linux/netlink.h
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
// linux/rtnetlink.h
const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
// linux/if_link.h
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFINFOMSG_LEN: usize = 16;
// linux/if_addr.h
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFADDRMSG_LEN: usize = 8;
/// `IFA_F_PERMANENT`: configured by someone, not learned (SLAAC) or temporary.
pub const IFA_F_PERMANENT: u32 = 0x80;
/// `RT_SCOPE_UNIVERSE`: a global address.
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const IFF_UP: u32 = 0x1;
pub const IFF_LOOPBACK: u32 = 0x8;

/// How many times a dump the kernel marked interrupted (the table changed under it) is redone.
const DUMP_RETRIES: usize = 5;

/// One network device, as RTM_GETLINK reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: i32,
    pub name: String,
    /// `IFF_*` flags.
    pub flags: u32,
}

/// One address of a device, as RTM_GETADDR reports it; the raw attributes are kept so the
/// same address can be added back elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub family: u8,
    pub prefix_len: u8,
    /// `IFA_F_*` flags (the 32-bit IFA_FLAGS attribute when the kernel sent one).
    pub flags: u32,
    pub scope: u8,
    pub index: i32,
    pub local: Option<Vec<u8>>,
    pub address: Option<Vec<u8>>,
    pub broadcast: Option<Vec<u8>>,
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.local.as_ref().or(self.address.as_ref());
        match bytes.map(|b| b.as_slice()) {
            Some(&[a, b, c, d]) => write!(f, "{}", std::net::Ipv4Addr::new(a, b, c, d))?,
            Some(b) if b.len() == 16 => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(b);
                write!(f, "{}", std::net::Ipv6Addr::from(octets))?
            }
            _ => write!(f, "<family {} address>", self.family)?,
        }
        write!(f, "/{}", self.prefix_len)
    }
}

/// A NETLINK_ROUTE socket bound to the network namespace it was opened in.
pub struct RouteSocket {
    fd: OwnedFd,
    seq: u32,
}

impl RouteSocket {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<RouteSocket> {
        let fd = socket::socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        Ok(RouteSocket { fd, seq: 0 })
    }

    /// A socket in the network namespace `netns` (an nsfs fd). The thread enters it for the
    /// `socket` call only and goes back to `own` (its current namespace) before returning.
    pub fn open_in(netns: BorrowedFd, own: BorrowedFd) -> io::Result<RouteSocket> {
        nix::sched::setns(netns, CloneFlags::CLONE_NEWNET)?;
        let sock = RouteSocket::open();
        // Failing to go back is all but impossible (root, holding an fd of the namespace), but
        // it is reported as an error of its own: every caller fails the command on it, and the
        // sockets made so far keep acting on their own namespaces whatever this thread is in.
        nix::sched::setns(own, CloneFlags::CLONE_NEWNET).map_err(|err| {
            io::Error::other(format!(
                "returning to the runtime's network namespace: {err}"
            ))
        })?;
        sock
    }

    /// The link named `name`, or None when there is none.
    pub fn link_by_name(&mut self, name: &str) -> io::Result<Option<Link>> {
        let mut req = Request::new(RTM_GETLINK, NLM_F_REQUEST, self.next_seq());
        req.ifinfomsg(0, 0, 0);
        req.attr_str(IFLA_IFNAME, name);
        self.get_link(req)
    }

    /// The link with index `index`, or None when there is none.
    pub fn link_by_index(&mut self, index: i32) -> io::Result<Option<Link>> {
        let mut req = Request::new(RTM_GETLINK, NLM_F_REQUEST, self.next_seq());
        req.ifinfomsg(index, 0, 0);
        self.get_link(req)
    }

    fn get_link(&mut self, req: Request) -> io::Result<Option<Link>> {
        match self.transact(&req) {
            Ok(replies) => Ok(replies
                .iter()
                .filter(|(typ, _)| *typ == RTM_NEWLINK)
                .find_map(|(_, body)| parse_link(body))),
            Err(err) if err.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Every address of the link `index` (all families).
    pub fn addresses(&mut self, index: i32) -> io::Result<Vec<Address>> {
        let mut last = None;
        for _ in 0..DUMP_RETRIES {
            let mut req = Request::new(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, self.next_seq());
            req.ifaddrmsg(libc::AF_UNSPEC as u8, 0, 0, 0, 0);
            match self.transact(&req) {
                Ok(replies) => {
                    return Ok(replies
                        .iter()
                        .filter(|(typ, _)| *typ == RTM_NEWADDR)
                        .filter_map(|(_, body)| parse_address(body))
                        .filter(|a| a.index == index)
                        .collect())
                }
                Err(err) if err.raw_os_error() == Some(libc::EINTR) => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINTR)))
    }

    /// Sets (or clears) IFF_UP of the link `index`.
    pub fn set_up(&mut self, index: i32, up: bool) -> io::Result<()> {
        let mut req = Request::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, self.next_seq());
        req.ifinfomsg(index, if up { IFF_UP } else { 0 }, IFF_UP);
        self.transact(&req).map(drop)
    }

    /// Moves the link `index` into the network namespace `netns`, renamed to `name`, in one
    /// request (a rename after the move could collide with a name already there; one before it
    /// could collide on this side).
    pub fn move_to_netns(&mut self, index: i32, name: &str, netns: BorrowedFd) -> io::Result<()> {
        let mut req = Request::new(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, self.next_seq());
        req.ifinfomsg(index, 0, 0);
        req.attr_str(IFLA_IFNAME, name);
        req.attr(IFLA_NET_NS_FD, &(netns.as_raw_fd() as u32).to_ne_bytes());
        self.transact(&req).map(drop)
    }

    /// Adds `addr` to the link `index` (replacing an identical one already there).
    pub fn add_address(&mut self, index: i32, addr: &Address) -> io::Result<()> {
        let mut req = Request::new(
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            self.next_seq(),
        );
        req.ifaddrmsg(
            addr.family,
            addr.prefix_len,
            (addr.flags & 0xff) as u8,
            addr.scope,
            index,
        );
        for (typ, value) in [
            (IFA_LOCAL, &addr.local),
            (IFA_ADDRESS, &addr.address),
            (IFA_BROADCAST, &addr.broadcast),
        ] {
            if let Some(v) = value {
                req.attr(typ, v);
            }
        }
        req.attr(IFA_FLAGS, &addr.flags.to_ne_bytes());
        self.transact(&req).map(drop)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one request and collects the replies to it: (type, body) pairs until the ack, the
    /// end of a dump, or the single answer of a plain GET. A kernel error comes back as its
    /// errno; an interrupted dump as EINTR (the caller may redo it).
    fn transact(&mut self, req: &Request) -> io::Result<Vec<(u16, Vec<u8>)>> {
        let data = req.finish();
        let sent = socket::send(self.fd.as_raw_fd(), &data, MsgFlags::empty())?;
        if sent != data.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "short write of a netlink request",
            ));
        }
        let mut replies = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut interrupted = false;
        loop {
            let n = loop {
                match socket::recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
                    Err(Errno::EINTR) => continue,
                    other => break other?,
                }
            };
            let mut rest = &buf[..n];
            let mut done = false;
            while rest.len() >= NLMSG_HDRLEN {
                let len = u32_at(rest, 0) as usize;
                if len < NLMSG_HDRLEN || len > rest.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "malformed netlink reply",
                    ));
                }
                let typ = u16_at(rest, 4);
                let flags = u16_at(rest, 6);
                let seq = u32_at(rest, 8);
                let body = &rest[NLMSG_HDRLEN..len];
                rest = &rest[align(len).min(rest.len())..];
                if seq != req.seq {
                    continue;
                }
                if flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match typ {
                    NLMSG_ERROR => {
                        let errno = if body.len() >= 4 { i32_at(body, 0) } else { 0 };
                        if errno != 0 {
                            return Err(io::Error::from_raw_os_error(-errno));
                        }
                        done = true;
                    }
                    NLMSG_DONE => done = true,
                    _ => {
                        replies.push((typ, body.to_vec()));
                        if flags & NLM_F_MULTI == 0 && req.flags & NLM_F_ACK == 0 {
                            done = true;
                        }
                    }
                }
            }
            if done {
                break;
            }
        }
        if interrupted {
            return Err(io::Error::from_raw_os_error(libc::EINTR));
        }
        Ok(replies)
    }
}

impl AsFd for RouteSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// One request message under construction.
struct Request {
    buf: Vec<u8>,
    flags: u16,
    seq: u32,
}

impl Request {
    fn new(typ: u16, flags: u16, seq: u32) -> Request {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by finish()
        buf.extend_from_slice(&typ.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&seq.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
        Request { buf, flags, seq }
    }

    /// `struct ifinfomsg`.
    fn ifinfomsg(&mut self, index: i32, flags: u32, change: u32) {
        self.buf.push(libc::AF_UNSPEC as u8);
        self.buf.push(0);
        self.buf.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
        self.buf.extend_from_slice(&index.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&change.to_ne_bytes());
    }

    /// `struct ifaddrmsg`.
    fn ifaddrmsg(&mut self, family: u8, prefix_len: u8, flags: u8, scope: u8, index: i32) {
        self.buf
            .extend_from_slice(&[family, prefix_len, flags, scope]);
        self.buf.extend_from_slice(&index.to_ne_bytes());
    }

    fn attr(&mut self, typ: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&typ.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.buf.resize(align(self.buf.len()), 0);
    }

    fn attr_str(&mut self, typ: u16, value: &str) {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.attr(typ, &bytes);
    }

    fn finish(&self) -> Vec<u8> {
        let mut buf = self.buf.clone();
        let len = buf.len() as u32;
        buf[..4].copy_from_slice(&len.to_ne_bytes());
        buf
    }
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    u32_at(b, at) as i32
}

/// The (type, value) attributes after a fixed header of `skip` bytes.
fn attrs(body: &[u8], skip: usize) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut rest = body.get(skip..).unwrap_or_default();
    while rest.len() >= 4 {
        let len = u16_at(rest, 0) as usize;
        if len < 4 || len > rest.len() {
            break;
        }
        // The top bits are NLA_F_NESTED / NLA_F_NET_BYTEORDER, not part of the type.
        out.push((u16_at(rest, 2) & 0x3fff, &rest[4..len]));
        rest = &rest[align(len).min(rest.len())..];
    }
    out
}

fn parse_link(body: &[u8]) -> Option<Link> {
    if body.len() < IFINFOMSG_LEN {
        return None;
    }
    let name = attrs(body, IFINFOMSG_LEN)
        .into_iter()
        .find(|(typ, _)| *typ == IFLA_IFNAME)
        .map(|(_, v)| {
            let v = v.split(|b| *b == 0).next().unwrap_or_default();
            String::from_utf8_lossy(v).into_owned()
        })?;
    Some(Link {
        index: i32_at(body, 4),
        name,
        flags: u32_at(body, 8),
    })
}

fn parse_address(body: &[u8]) -> Option<Address> {
    if body.len() < IFADDRMSG_LEN {
        return None;
    }
    let mut addr = Address {
        family: body[0],
        prefix_len: body[1],
        flags: u32::from(body[2]),
        scope: body[3],
        index: i32_at(body, 4),
        local: None,
        address: None,
        broadcast: None,
    };
    for (typ, value) in attrs(body, IFADDRMSG_LEN) {
        match typ {
            IFA_LOCAL => addr.local = Some(value.to_vec()),
            IFA_ADDRESS => addr.address = Some(value.to_vec()),
            IFA_BROADCAST => addr.broadcast = Some(value.to_vec()),
            IFA_FLAGS if value.len() >= 4 => addr.flags = u32_at(value, 0),
            _ => {}
        }
    }
    Some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout() {
        let mut req = Request::new(RTM_GETLINK, NLM_F_REQUEST, 7);
        req.ifinfomsg(3, IFF_UP, IFF_UP);
        req.attr_str(IFLA_IFNAME, "eth0");
        let data = req.finish();
        // header 16 + ifinfomsg 16 + attr (4 + "eth0\0" = 9, padded to 12)
        assert_eq!(data.len(), 44);
        assert_eq!(u32_at(&data, 0), 44);
        assert_eq!(u16_at(&data, 4), RTM_GETLINK);
        assert_eq!(u32_at(&data, 8), 7);
        assert_eq!(i32_at(&data, 20), 3);
        assert_eq!(u16_at(&data, 32), 9);
        assert_eq!(u16_at(&data, 34), IFLA_IFNAME);
        assert_eq!(&data[36..41], b"eth0\0");
    }

    #[test]
    fn parses_an_address_and_stops_at_a_bad_attribute() {
        let mut req = Request::new(RTM_NEWADDR, 0, 1);
        req.ifaddrmsg(libc::AF_INET as u8, 24, 0x80, 0, 5);
        req.attr(IFA_LOCAL, &[10, 0, 0, 1]);
        req.attr(IFA_FLAGS, &0x280u32.to_ne_bytes());
        let mut body = req.finish()[NLMSG_HDRLEN..].to_vec();
        body.extend_from_slice(&[0xff, 0x00, 0x01, 0x00]); // length 255: past the end
        let addr = parse_address(&body).unwrap();
        assert_eq!(addr.index, 5);
        assert_eq!(addr.prefix_len, 24);
        assert_eq!(addr.flags, 0x280);
        assert_eq!(addr.to_string(), "10.0.0.1/24");
        assert!(parse_address(&body[..4]).is_none());
    }
}
