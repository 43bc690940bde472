//! Redis snapshots for backups: Usher asks a Redis server (best a replica) for a full resynchronisation
//! with `SYNC`, as a replica of it would, and keeps the RDB file it sends (made by the server's own
//! background save), then hangs up. [`check`] reads an RDB file's header, end marker and CRC-64 before
//! a backup is uploaded and before a restore puts one in place.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncSeekExt as _, AsyncWrite,
    AsyncWriteExt as _, BufReader,
};
use tokio::net::TcpStream;

/// Longest the server may take to send its snapshot.
const FETCH_DEADLINE: Duration = Duration::from_secs(600);

/// The RESP encoding of a command.
fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Writes the RDB snapshot of the Redis server at `url` (`redis://[user:password@]host[:port]`, or
/// `redis+unix:///path/redis.sock`) to `to`
/// and returns its size. `to` must not exist.
///
/// # Errors
/// A URL of another form (TLS is not supported here), a refused login, a server that does not send a
/// snapshot in time, or an RDB that fails [`check`].
pub async fn fetch(url: &str, to: &Path) -> anyhow::Result<u64> {
    let u = url::Url::parse(url).context("backup.redis_source is not a URL")?;
    let password = u.password().map(percent_decode).transpose()?;
    let user = percent_decode(u.username())?;
    let size = tokio::time::timeout(FETCH_DEADLINE, async {
        let mut con = BufReader::new(connect(&u).await?);
        if let Some(password) = &password {
            let auth = if user.is_empty() {
                command(&["AUTH", password])
            } else {
                command(&["AUTH", &user, password])
            };
            con.get_mut().write_all(&auth).await?;
            let mut line = String::new();
            con.read_line(&mut line).await?;
            if !line.starts_with("+OK") {
                bail!("Redis refused the login: {}", line.trim());
            }
        }
        // a cluster node's snapshot holds only its own slots: no backup of the store
        con.get_mut()
            .write_all(&command(&["INFO", "cluster"]))
            .await?;
        let mut line = String::new();
        con.read_line(&mut line).await?;
        if let Some(len) = line.trim().strip_prefix('$').and_then(|l| l.parse::<usize>().ok()) {
            let mut info = vec![0u8; len + 2];
            con.read_exact(&mut info).await?;
            if String::from_utf8_lossy(&info)
                .lines()
                .any(|l| l.trim() == "cluster_enabled:1")
            {
                bail!(
                    "backup.redis_source is a node of a Redis Cluster, whose snapshot holds only that \
                     master's slots: back up every master by Redis's own means (docs/redis.md)"
                );
            }
        }
        con.get_mut().write_all(&command(&["SYNC"])).await?;
        // the server sends bare newlines while its background save runs, then `$<length>`
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = con.read_until(b'\n', &mut line).await?;
            if n == 0 {
                bail!("Redis closed the connection before sending its snapshot");
            }
            if line != b"\n" {
                break;
            }
        }
        let header = String::from_utf8_lossy(&line).trim().to_owned();
        if let Some(error) = header.strip_prefix('-') {
            bail!("Redis refused SYNC: {error}");
        }
        let length: u64 = header
            .strip_prefix('$')
            .and_then(|l| l.parse().ok())
            .with_context(|| format!("Redis answered SYNC with {header:?}, not a snapshot"))?;
        let mut out = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(to)
            .await
            .with_context(|| format!("creating {}", to.display()))?;
        let copied = tokio::io::copy(&mut (&mut con).take(length), &mut out).await?;
        if copied != length {
            bail!("Redis sent {copied} of the snapshot's {length} bytes");
        }
        out.sync_all().await?;
        anyhow::Ok(length)
    })
    .await
    .with_context(|| {
        format!(
            "Redis sent no snapshot within {} s",
            FETCH_DEADLINE.as_secs()
        )
    })??;
    check(to).await?;
    Ok(size)
}

/// A connection to Redis, over TCP or a Unix socket.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Connects to the server a `redis://host:port` or `redis+unix:///path` (`unix:///path`) URL names.
async fn connect(u: &url::Url) -> anyhow::Result<Box<dyn Io>> {
    match u.scheme() {
        "redis" => {
            let host = u.host_str().context("the Redis URL names no host")?;
            let port = u.port().unwrap_or(6379);
            let stream = TcpStream::connect((host, port))
                .await
                .with_context(|| format!("connecting to Redis at {host}:{port}"))?;
            Ok(Box::new(stream))
        }
        "redis+unix" | "unix" => {
            let path = u.path();
            let stream = tokio::net::UnixStream::connect(path)
                .await
                .with_context(|| format!("connecting to Redis at {path}"))?;
            Ok(Box::new(stream))
        }
        other => bail!(
            "backups read Redis snapshots over redis:// or redis+unix:// (not {other}://, TLS is not supported here): point backup.redis_source at a replica's plain port"
        ),
    }
}

/// Undoes the URL's %-escapes of a user name or password.
fn percent_decode(s: &str) -> anyhow::Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])?;
            out.push(u8::from_str_radix(hex, 16).context("a bad %-escape in the Redis URL")?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8(out)?)
}

/// Checks an RDB file: the `REDIS` header with a version, the end-of-file opcode, and the CRC-64 of
/// everything before it (unless the server wrote it without one, `rdbchecksum no`).
///
/// # Errors
/// A file that is not an RDB snapshot, is truncated, or whose checksum does not match.
pub async fn check(path: &Path) -> anyhow::Result<()> {
    let name = path.display();
    let mut file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("reading {name}"))?;
    let len = file.metadata().await?.len();
    let mut head = [0u8; 9];
    if len < 18 || file.read_exact(&mut head).await.is_err() {
        bail!("{name} is not a Redis RDB snapshot (too short)");
    }
    if &head[..5] != b"REDIS" || !head[5..].iter().all(u8::is_ascii_digit) {
        bail!("{name} is not a Redis RDB snapshot (no REDIS header)");
    }
    // the end-of-file opcode, then the CRC-64 (little-endian) of everything up to and with it
    let mut tail = [0u8; 9];
    file.seek(std::io::SeekFrom::Start(len - 9)).await?;
    file.read_exact(&mut tail).await?;
    if tail[0] != 0xFF {
        bail!("{name} is truncated: no end-of-file marker where the snapshot should end");
    }
    let stored = u64::from_le_bytes(tail[1..].try_into().expect("8 bytes"));
    if stored == 0 {
        // written with `rdbchecksum no`
        return Ok(());
    }
    // read in pieces: a snapshot may be larger than the memory a node should spend on it
    let crc = crc::Crc::<u64>::new(&crc::CRC_64_REDIS);
    let mut digest = crc.digest();
    file.seek(std::io::SeekFrom::Start(0)).await?;
    let mut left = len - 8;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = usize::try_from(left.min(buf.len() as u64)).expect("at most the buffer");
        file.read_exact(&mut buf[..want]).await?;
        digest.update(&buf[..want]);
        left -= want as u64;
    }
    let computed = digest.finalize();
    if computed != stored {
        bail!("{name} is damaged: its CRC-64 is {stored:016x}, its content's {computed:016x}");
    }
    Ok(())
}
