use super::*;

fn msg(ty: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 64 + body.len()];
    let n = Builder::new(&mut buf, ty, 0, seq).bytes(body).finish().unwrap();
    buf.truncate(n);
    buf
}

#[test]
fn builder_pads_every_part_and_writes_the_length() {
    let mut buf = [0xffu8; 64];
    let n = Builder::new(&mut buf, 24, NLM_F_ACK, 9)
        .bytes(&[1, 2, 3])
        .attr(7, &[0xaa])
        .attr_padded(10, &[1, 2], 3)
        .finish()
        .unwrap();
    assert_eq!(n, 16 + 4 + 8 + 12);
    assert_eq!(ne_u32(&buf, 0), Some(n as u32));
    assert_eq!(ne_u16(&buf, 6), Some(NLM_F_ACK | NLM_F_REQUEST));
    assert_eq!(&buf[16..20], &[1, 2, 3, 0], "fixed header padded with zeros");
    let m = messages(&buf[..n]).next().unwrap().unwrap();
    assert_eq!((m.ty, m.seq, m.body.len()), (24, 9, n - 16));
    let (h, a) = m.split(3).unwrap();
    assert_eq!(h, &[1, 2, 3]);
    let a: Vec<_> = a.map(Result::unwrap).collect();
    assert_eq!(a, vec![Attr { ty: 7, data: &[0xaa] }, Attr { ty: 10, data: &[1, 2, 0, 0, 0] }]);
    assert_eq!(&buf[n - 3..n], &[0, 0, 0], "attribute padding is zeroed too");
}

#[test]
fn builder_reports_no_space_instead_of_writing_past_the_buffer() {
    let mut buf = [0u8; 24];
    assert_eq!(Builder::new(&mut buf, 1, 0, 0).attr(1, &[0; 8]).finish(), Err(Error::NoSpace));
    assert_eq!(Builder::new(&mut buf, 1, 0, 0).attr(1, &[0; 4]).finish(), Ok(24));
    assert_eq!(Builder::new(&mut [0u8; 8], 1, 0, 0).finish(), Err(Error::NoSpace));
    let mut big = vec![0u8; 70_000];
    assert_eq!(Builder::new(&mut big, 1, 0, 0).attr_padded(1, &[], 65_532).finish(), Err(Error::NoSpace));
    assert_eq!(Builder::new(&mut big, 1, 0, 0).attr_padded(1, &[], 65_531).finish(), Ok(16 + 65_536));
}

#[test]
fn messages_stop_with_an_error_at_a_bad_length() {
    let mut d = msg(16, 1, &[0; 4]);
    d.extend(msg(17, 2, &[]));
    let all: Vec<_> = messages(&d).collect();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(Result::is_ok));
    // the second message claims more than there is
    let mut bad = d.clone();
    bad[20..24].copy_from_slice(&100u32.to_ne_bytes());
    let r: Vec<_> = messages(&bad).collect();
    assert_eq!(r.len(), 2);
    assert_eq!(r[1], Err(Error::Malformed("netlink header")));
    // a length below the header size
    bad[20..24].copy_from_slice(&3u32.to_ne_bytes());
    assert_eq!(messages(&bad).nth(1), Some(Err(Error::Malformed("netlink header"))));
    // trailing bytes shorter than a header are ignored
    d.extend([1, 2, 3]);
    assert_eq!(messages(&d).count(), 2);
    assert_eq!(messages(&[]).count(), 0);
}

#[test]
fn attributes_stop_with_an_error_at_a_bad_length() {
    let mut body = Vec::new();
    for (len, ty) in [(8u16, 1u16), (40, 2)] {
        body.extend_from_slice(&len.to_ne_bytes());
        body.extend_from_slice(&ty.to_ne_bytes());
        if len == 8 {
            body.extend_from_slice(&[1, 2, 3, 4]);
        }
    }
    let (_, a) = Message { ty: 0, flags: 0, seq: 0, pid: 0, body: &body }.split(0).unwrap();
    let r: Vec<_> = a.clone().collect();
    assert_eq!(r[0], Ok(Attr { ty: 1, data: &[1, 2, 3, 4] }));
    assert_eq!(r[1], Err(Error::Malformed("attribute")));
    assert_eq!(a.lenient().count(), 1);
    // flag bits are not part of the type
    let mut nested = 4u16.to_ne_bytes().to_vec();
    nested.extend_from_slice(&(3u16 | 0x8000).to_ne_bytes());
    assert_eq!(attrs(&nested).next(), Some(Ok(Attr { ty: 3, data: &[] })));
    let mut short = 2u16.to_ne_bytes().to_vec();
    short.extend_from_slice(&1u16.to_ne_bytes());
    assert_eq!(attrs(&short).next(), Some(Err(Error::Malformed("attribute"))));
}

#[test]
fn error_messages_are_length_checked() {
    let mut body = (-2i32).to_ne_bytes().to_vec();
    let m = Message { ty: NLMSG_ERROR, flags: 0, seq: 5, pid: 0, body: &body };
    assert_eq!(m.ack(), Ok(Ack { errno: 2, request_seq: None }));
    body.extend_from_slice(&msg(0x301, 77, &[])[..16]);
    let m = Message { ty: NLMSG_ERROR, flags: 0, seq: 5, pid: 0, body: &body };
    assert_eq!(m.ack(), Ok(Ack { errno: 2, request_seq: Some(77) }));
    for short in [&[][..], &[0, 0, 0][..]] {
        let m = Message { ty: NLMSG_ERROR, flags: 0, seq: 5, pid: 0, body: short };
        assert_eq!(m.ack(), Err(Error::Malformed("netlink error message")));
    }
    let m = Message { ty: NLMSG_ERROR, flags: 0, seq: 5, pid: 0, body: &i32::MIN.to_ne_bytes() };
    assert!(m.ack().is_ok(), "no overflow on a hostile errno");
    assert_eq!(
        Message { ty: 0, flags: 0, seq: 0, pid: 0, body: &[1] }.split(2).err(),
        Some(Error::Malformed("message header"))
    );
}
