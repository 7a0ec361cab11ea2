//! Accepted connections with bounds on what a silent or idle peer may hold:
//! a cap on open connections, a deadline for the HTTP/2 preface, and an
//! idle timeout on reads.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};
use tokio_stream::Stream;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming};

/// The HTTP/2 client preface every connection must start with.
const PREFACE_LEN: usize = 24;

#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub(crate) handshake_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

/// The listener's connections, each bounded by [`ConnLimits`]; connections
/// beyond `max_connections` are closed as soon as they are accepted.
pub(crate) struct Incoming {
    inner: TcpIncoming,
    permits: Arc<Semaphore>,
    limits: ConnLimits,
}

impl Incoming {
    pub(crate) fn new(inner: TcpIncoming, max_connections: usize, limits: ConnLimits) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            limits,
        }
    }
}

impl Stream for Incoming {
    type Item = io::Result<Conn>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let stream = match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(stream))) => stream,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() else {
                // Debug, not warn: a flood of connections must not become a flood of logs.
                tracing::debug!("refused a connection: at max_connections");
                drop(stream);
                continue;
            };
            return Poll::Ready(Some(Ok(Conn::new(stream, permit, self.limits))));
        }
    }
}

pin_project_lite::pin_project! {
    /// One accepted connection: closed (a read error) when the preface does
    /// not arrive within the handshake timeout, or when nothing has been
    /// read for the idle timeout.
    pub(crate) struct Conn {
        #[pin]
        io: TcpStream,
        _permit: OwnedSemaphorePermit,
        limits: ConnLimits,
        preface_left: usize,
        accepted: Instant,
        last_read: Instant,
        timer: Pin<Box<Sleep>>,
    }
}

impl Conn {
    fn new(io: TcpStream, permit: OwnedSemaphorePermit, limits: ConnLimits) -> Self {
        let now = Instant::now();
        Self {
            io,
            _permit: permit,
            limits,
            preface_left: PREFACE_LEN,
            accepted: now,
            last_read: now,
            timer: Box::pin(tokio::time::sleep_until(now + limits.handshake_timeout)),
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        if let Poll::Ready(result) = this.io.poll_read(cx, buf) {
            let read = buf.filled().len() - before;
            if read > 0 {
                *this.last_read = Instant::now();
                *this.preface_left = this.preface_left.saturating_sub(read);
            }
            return Poll::Ready(result);
        }
        // The timer is moved lazily, when it fires: no re-arming per read.
        loop {
            if this.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            // The preface is timed from the accept, whatever trickled in since.
            let due = if *this.preface_left > 0 {
                *this.accepted + this.limits.handshake_timeout
            } else {
                *this.last_read + this.limits.idle_timeout
            };
            if Instant::now() >= due {
                let why = if *this.preface_left > 0 {
                    "no HTTP/2 preface within the handshake timeout"
                } else {
                    "nothing read within the idle timeout"
                };
                tracing::debug!(why, "closing a connection");
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
            }
            this.timer.as_mut().reset(due);
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().io.poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.project().io.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_stream::StreamExt as _;

    use super::*;

    const LIMITS: ConnLimits = ConnLimits {
        handshake_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(400),
    };

    /// Accepts one connection through [`Incoming`] and reads it to its end.
    async fn serve_one(incoming: &mut Incoming) -> io::Result<Vec<u8>> {
        let mut conn = incoming.next().await.unwrap()?;
        let mut read = Vec::new();
        conn.read_to_end(&mut read).await.map(|_| read)
    }

    /// Finding 10: a socket that sends nothing is let go of after the
    /// handshake timeout; one that sent its preface, after the idle timeout;
    /// one over `max_connections`, at once.
    #[tokio::test]
    async fn finding_10_silent_and_idle_connections_are_closed() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = Incoming::new(TcpIncoming::from(listener), 1, LIMITS);

        let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(10), serve_one(&mut incoming)).await;
        let err = closed.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");

        let mut talker = tokio::net::TcpStream::connect(addr).await.unwrap();
        talker.write_all(&[b'P'; PREFACE_LEN]).await.unwrap();
        let mut conn = incoming.next().await.unwrap().unwrap();
        let mut preface = [0; PREFACE_LEN];
        conn.read_exact(&mut preface).await.unwrap();
        // Now silent: the idle timeout, not the handshake's, ends it.
        let started = Instant::now();
        let mut rest = Vec::new();
        let idle = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut rest)).await;
        assert_eq!(idle.unwrap().unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= LIMITS.idle_timeout);

        // Over the cap (the held connection takes the only slot): closed
        // as soon as accepted.
        let _held = conn;
        let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accept = tokio::spawn(async move { incoming.next().await.map(|c| c.is_ok()) });
        let mut buf = Vec::new();
        let eof = tokio::time::timeout(Duration::from_secs(10), extra.read_to_end(&mut buf)).await;
        assert!(matches!(eof, Ok(Ok(0)) | Ok(Err(_))), "{eof:?}");
        accept.abort();
    }
}
