//! A small WebSocket server side (RFC 6455) for devnet's JSON-RPC: the opening handshake,
//! masked client frames in, unmasked frames out, fragmented messages, ping/pong and close.
//! Messages larger than the limit end the connection with close code 1009.

use base64::Engine as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// SHA-1 (FIPS 180-4), for the handshake's accept key only.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, x) in out.chunks_mut(4).zip(h) {
        chunk.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let digest = sha1(&[key.trim().as_bytes(), GUID].concat());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The handshake response.
pub fn handshake_response(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
}

/// A complete message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Close,
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Protocol(&'static str),
    #[error("message of {0} bytes is over the limit")]
    TooLarge(u64),
}

/// Reads frames from a client (after the handshake), `pending` bytes first.
pub struct Reader<R> {
    inner: R,
    pending: Vec<u8>,
    max_message: usize,
    /// A fragmented message in progress: its opcode and the data so far (control frames may
    /// come between its fragments).
    partial: Option<(u8, Vec<u8>)>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(inner: R, pending: Vec<u8>, max_message: usize) -> Self {
        Self {
            inner,
            pending,
            max_message,
            partial: None,
        }
    }

    async fn fill(&mut self, n: usize) -> Result<(), WsError> {
        while self.pending.len() < n {
            let mut buf = [0u8; 4096];
            let got = self.inner.read(&mut buf).await?;
            if got == 0 {
                return Err(WsError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            self.pending.extend_from_slice(&buf[..got]);
        }
        Ok(())
    }

    async fn take(&mut self, n: usize) -> Result<Vec<u8>, WsError> {
        self.fill(n).await?;
        Ok(self.pending.drain(..n).collect())
    }

    /// One frame: `(fin, opcode, unmasked payload)`.
    async fn frame(&mut self, so_far: usize) -> Result<(bool, u8, Vec<u8>), WsError> {
        let head = self.take(2).await?;
        let (fin, opcode) = (head[0] & 0x80 != 0, head[0] & 0x0f);
        if head[0] & 0x70 != 0 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        if head[1] & 0x80 == 0 {
            return Err(WsError::Protocol("client frames must be masked"));
        }
        let len = match head[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes(
                self.take(2).await?.try_into().expect("2"),
            )),
            127 => u64::from_be_bytes(self.take(8).await?.try_into().expect("8")),
            n => u64::from(n),
        };
        if len.saturating_add(so_far as u64) > self.max_message as u64 {
            return Err(WsError::TooLarge(len));
        }
        if opcode >= 0x8 && (len > 125 || !fin) {
            return Err(WsError::Protocol(
                "control frames are single and at most 125 bytes",
            ));
        }
        let mask = self.take(4).await?;
        let mut payload = self.take(len as usize).await?;
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        Ok((fin, opcode, payload))
    }

    /// The next message; control frames between fragments are returned as they come.
    pub async fn next(&mut self) -> Result<Message, WsError> {
        loop {
            let so_far = self.partial.as_ref().map_or(0, |p| p.1.len());
            let (fin, opcode, payload) = self.frame(so_far).await?;
            match opcode {
                0x8 => return Ok(Message::Close),
                0x9 => return Ok(Message::Ping(payload)),
                0xA => continue,
                0x1 | 0x2 if self.partial.is_none() => self.partial = Some((opcode, payload)),
                0x0 if self.partial.is_some() => {
                    self.partial.as_mut().expect("checked").1.extend(payload);
                }
                _ => return Err(WsError::Protocol("unexpected opcode")),
            }
            if fin {
                let (kind, data) = self.partial.take().expect("set above");
                return match kind {
                    0x1 => String::from_utf8(data)
                        .map(Message::Text)
                        .map_err(|_| WsError::Protocol("text is not UTF-8")),
                    _ => Ok(Message::Binary(data)),
                };
            }
        }
    }
}

/// One unmasked server frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Writes a text message.
pub async fn send_text<W: AsyncWrite + Unpin>(w: &mut W, text: &str) -> std::io::Result<()> {
    w.write_all(&frame(0x1, text.as_bytes())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_and_the_rfc_accept_key() {
        assert_eq!(
            hex::encode(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(sha1(&[b'a'; 1000])),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
        // RFC 6455 §1.3's example.
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn masked(opcode_byte: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![opcode_byte];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n => {
                out.push(0x80 | 126);
                out.extend((n as u16).to_be_bytes());
            }
        }
        out.extend(mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<Message, String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut r = Reader::new(&[][..], bytes, max);
            let mut out = Vec::new();
            loop {
                match r.next().await {
                    Ok(m) => out.push(Ok(m)),
                    Err(WsError::Io(_)) => return out,
                    Err(e) => {
                        out.push(Err(e.to_string()));
                        return out;
                    }
                }
            }
        })
    }

    #[test]
    fn frames_fragments_and_control_messages() {
        let long = vec![b'x'; 300];
        let mut bytes = masked(0x81, b"hello");
        bytes.extend(masked(0x01, b"frag"));
        bytes.extend(masked(0x89, b"p"));
        bytes.extend(masked(0x80, b"ment"));
        bytes.extend(masked(0x82, &long));
        bytes.extend(masked(0x88, b""));
        let got = read_all(bytes, 1 << 20);
        assert_eq!(
            got,
            vec![
                Ok(Message::Text("hello".into())),
                Ok(Message::Ping(b"p".to_vec())),
                Ok(Message::Text("fragment".into())),
                Ok(Message::Binary(long)),
                Ok(Message::Close),
            ]
        );
    }

    #[test]
    fn bad_frames_are_errors() {
        let unmasked = vec![0x81, 0x01, b'a'];
        assert!(
            read_all(unmasked, 100)[0]
                .as_ref()
                .unwrap_err()
                .contains("masked")
        );
        let big = masked(0x81, &[b'a'; 200]);
        assert!(
            read_all(big, 100)[0]
                .as_ref()
                .unwrap_err()
                .contains("over the limit")
        );
        let big_ping = masked(0x89, &[0; 126]);
        assert!(
            read_all(big_ping, 1000)[0]
                .as_ref()
                .unwrap_err()
                .contains("125 bytes")
        );
        let fragmented_ping = masked(0x09, b"x");
        assert!(
            read_all(fragmented_ping, 100)[0]
                .as_ref()
                .unwrap_err()
                .contains("control")
        );
        let orphan = masked(0x80, b"x");
        assert!(
            read_all(orphan, 100)[0]
                .as_ref()
                .unwrap_err()
                .contains("opcode")
        );
        let bad_utf8 = masked(0x81, &[0xff, 0xfe]);
        assert!(
            read_all(bad_utf8, 100)[0]
                .as_ref()
                .unwrap_err()
                .contains("UTF-8")
        );
        assert_eq!(frame(0x1, b"hi"), vec![0x81, 2, b'h', b'i']);
        assert_eq!(&frame(0x1, &[0; 300])[..4], &[0x81, 126, 1, 44]);
    }
}
