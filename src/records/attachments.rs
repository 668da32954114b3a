//! Attachments: uploads streamed to storage, never held whole in memory.
//!
//! An upload is read through one bounded buffer: the first [`SNIFF_BYTES`] decide its type (from
//! the bytes, never from what the client claims) against the allow-list, then every chunk is
//! hashed (SHA-256), counted against the size limit and written, to a `.part` file renamed when
//! complete, or as rows of `crm_attachment_chunks`. The `crm_attachments` row is written last, so
//! an upload that fails (too large, refused type, client gone) leaves nothing visible, and its
//! partial bytes are removed.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::interactions::{MAX_SHORT_CHARS, bounded};
use super::{RecordsError, RecordsResult, invalid};
use crate::store::{AttachmentRow, AttachmentStorage, RecordStore, TenantId, new_id};

/// How many leading bytes decide an upload's type.
pub const SNIFF_BYTES: usize = 8192;
/// The size of one read from the upload, one file write and one database chunk.
const CHUNK: usize = 256 * 1024;

/// The types accepted unless configured otherwise: documents, images and plain text.
pub const DEFAULT_ALLOWED_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
];

/// Where attachment bytes go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentStore {
    /// Files under this directory, one folder per tenant.
    Directory(PathBuf),
    /// Rows of `crm_attachment_chunks` in the store's database.
    Database,
}

/// Where attachments go and what is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentConfig {
    /// Where new uploads are stored (downloads read wherever each was stored).
    pub store: AttachmentStore,
    /// The largest upload accepted, in bytes.
    pub max_bytes: u64,
    /// The media types accepted, as sniffed from the bytes.
    pub allowed_types: Vec<String>,
}

impl AttachmentConfig {
    /// A directory store with the default limit (25 MiB) and allow-list.
    pub fn directory(path: impl Into<PathBuf>) -> Self {
        Self {
            store: AttachmentStore::Directory(path.into()),
            max_bytes: 25 * 1024 * 1024,
            allowed_types: DEFAULT_ALLOWED_TYPES.iter().map(|t| (*t).to_owned()).collect(),
        }
    }
}

/// An attachment's bytes as a stream of chunks.
pub type AttachmentBody = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// The type of an upload from its first bytes: a known signature, else `text/plain` for UTF-8
/// without NUL bytes, else `application/octet-stream`.
pub fn sniff(head: &[u8]) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    // A multi-byte character may be cut at the end of the window; only the rest must be valid.
    let text = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    };
    if text && !head.contains(&0) { "text/plain" } else { "application/octet-stream" }.to_owned()
}

/// The directory of a tenant's files: the tenant id hex-encoded, so no id can name a path.
fn tenant_dir(root: &Path, tenant: &TenantId) -> PathBuf {
    let hex: String = tenant.as_str().bytes().map(|b| format!("{b:02x}")).collect();
    root.join(hex)
}

/// Where an upload's bytes are being written.
enum Sink<'s, S> {
    File { file: tokio::fs::File, part: PathBuf, done: PathBuf },
    Database { store: &'s S, seq: u64 },
}

impl<S: RecordStore> Sink<'_, S> {
    async fn write(&mut self, tenant: &TenantId, id: &str, bytes: &[u8]) -> RecordsResult<()> {
        match self {
            Self::File { file, .. } => file.write_all(bytes).await.map_err(RecordsError::Io),
            Self::Database { store, seq } => {
                store.put_attachment_chunk(tenant, id, *seq, bytes.to_vec()).await?;
                *seq += 1;
                Ok(())
            }
        }
    }

    async fn finish(self) -> RecordsResult<()> {
        match self {
            Self::File { mut file, part, done } => {
                file.flush().await.map_err(RecordsError::Io)?;
                file.sync_all().await.map_err(RecordsError::Io)?;
                drop(file);
                tokio::fs::rename(&part, &done).await.map_err(RecordsError::Io)
            }
            Self::Database { .. } => Ok(()),
        }
    }

    /// Removes what a failed upload wrote; best effort, the upload's own error is what matters.
    async fn discard(self, tenant: &TenantId, id: &str) {
        match self {
            Self::File { file, part, .. } => {
                drop(file);
                let _ = tokio::fs::remove_file(part).await;
            }
            Self::Database { store, .. } => {
                let _ = store.delete_attachment_chunks(tenant, id).await;
            }
        }
    }
}

/// Fills `buf` from `reader` until it is full or the reader ends; how many bytes it holds.
async fn fill<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut [u8]) -> RecordsResult<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]).await.map_err(RecordsError::Io)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// What an upload is: whose, which interaction, its name and who sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload<'a> {
    /// The interaction it is attached to.
    pub interaction_id: &'a str,
    /// The file name to offer on download.
    pub file_name: &'a str,
    /// Who uploads it.
    pub author: &'a str,
}

/// Stores an attachment read from `reader`; its row. Refused before anything is kept when the
/// interaction is unknown, the type is not allowed ([`RecordsError::UnsupportedType`]) or the
/// bytes exceed the limit ([`RecordsError::TooLarge`]).
pub async fn upload<S: RecordStore, R: AsyncRead + Unpin + Send>(
    store: &S,
    tenant: &TenantId,
    config: &AttachmentConfig,
    upload: Upload<'_>,
    mut reader: R,
    now: DateTime<Utc>,
) -> RecordsResult<AttachmentRow> {
    bounded("the file name", upload.file_name, MAX_SHORT_CHARS)?;
    if upload.file_name.chars().any(char::is_control) {
        return Err(invalid("the file name contains control characters"));
    }
    bounded("the author", upload.author, MAX_SHORT_CHARS)?;
    if store.interaction(tenant, upload.interaction_id).await?.is_none() {
        return Err(RecordsError::UnknownInteraction { id: upload.interaction_id.to_owned() });
    }

    let mut buf = vec![0u8; CHUNK];
    let mut filled = fill(&mut reader, &mut buf[..SNIFF_BYTES]).await?;
    if filled == 0 {
        return Err(invalid("the attachment is empty"));
    }
    let content_type = sniff(&buf[..filled]);
    if !config.allowed_types.iter().any(|t| t.eq_ignore_ascii_case(&content_type)) {
        return Err(RecordsError::UnsupportedType {
            detected: content_type,
            allowed: config.allowed_types.join(", "),
        });
    }

    let id = new_id();
    let mut sink = match &config.store {
        AttachmentStore::Directory(root) => {
            let dir = tenant_dir(root, tenant);
            tokio::fs::create_dir_all(&dir).await.map_err(RecordsError::Io)?;
            let part = dir.join(format!("{id}.part"));
            let file = tokio::fs::File::create(&part).await.map_err(RecordsError::Io)?;
            Sink::File { file, part, done: dir.join(&id) }
        }
        AttachmentStore::Database => Sink::Database { store, seq: 0 },
    };
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    let written = async {
        loop {
            // Top the buffer up to a whole chunk, so database chunks are few and large.
            filled += fill(&mut reader, &mut buf[filled..]).await?;
            if filled == 0 {
                return Ok(());
            }
            size += filled as u64;
            if size > config.max_bytes {
                return Err(RecordsError::TooLarge { limit: config.max_bytes });
            }
            hasher.update(&buf[..filled]);
            sink.write(tenant, &id, &buf[..filled]).await?;
            let full = filled == buf.len();
            filled = 0;
            if !full {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(error) = written {
        sink.discard(tenant, &id).await;
        return Err(error);
    }
    let storage = match &config.store {
        AttachmentStore::Directory(_) => AttachmentStorage::Directory,
        AttachmentStore::Database => AttachmentStorage::Database,
    };
    let row = AttachmentRow {
        id: id.clone(),
        interaction_id: upload.interaction_id.to_owned(),
        file_name: upload.file_name.to_owned(),
        content_type,
        size_bytes: size,
        sha256: hasher.finalize().iter().map(|b| format!("{b:02x}")).collect(),
        storage,
        created_by: upload.author.to_owned(),
        created_at: now,
    };
    let kept = async {
        sink.finish().await?;
        store.insert_attachment(tenant, &row).await?;
        Ok::<_, RecordsError>(())
    }
    .await;
    if let Err(error) = kept {
        remove_bytes(store, tenant, config, &row).await;
        return Err(error);
    }
    Ok(store.attachment(tenant, &id).await?.unwrap_or(row))
}

/// Removes the stored bytes of an attachment whose row could not be written.
async fn remove_bytes<S: RecordStore>(
    store: &S,
    tenant: &TenantId,
    config: &AttachmentConfig,
    row: &AttachmentRow,
) {
    match (&config.store, row.storage) {
        (AttachmentStore::Directory(root), AttachmentStorage::Directory) => {
            let dir = tenant_dir(root, tenant);
            let _ = tokio::fs::remove_file(dir.join(format!("{}.part", row.id))).await;
            let _ = tokio::fs::remove_file(dir.join(&row.id)).await;
        }
        _ => {
            let _ = store.delete_attachment_chunks(tenant, &row.id).await;
        }
    }
}

/// An attachment's metadata and its bytes as a stream, read chunk by chunk from where it was
/// stored.
pub async fn open_attachment<S: RecordStore + Clone>(
    store: &S,
    tenant: &TenantId,
    config: &AttachmentConfig,
    id: &str,
) -> RecordsResult<(AttachmentRow, AttachmentBody)> {
    let Some(row) = store.attachment(tenant, id).await? else {
        return Err(RecordsError::UnknownAttachment { id: id.to_owned() });
    };
    let body: AttachmentBody = match row.storage {
        AttachmentStorage::Directory => {
            let AttachmentStore::Directory(root) = &config.store else {
                return Err(RecordsError::Io(std::io::Error::other(
                    "the attachment is in a directory, and no attachment directory is configured",
                )));
            };
            let file = tokio::fs::File::open(tenant_dir(root, tenant).join(&row.id))
                .await
                .map_err(RecordsError::Io)?;
            Box::pin(tokio_util::io::ReaderStream::with_capacity(file, CHUNK))
        }
        AttachmentStorage::Database => {
            let (store, tenant, id) = (store.clone(), tenant.clone(), row.id.clone());
            Box::pin(futures_util::stream::try_unfold(0u64, move |seq| {
                let (store, tenant, id) = (store.clone(), tenant.clone(), id.clone());
                async move {
                    let chunk =
                        store.attachment_chunk(&tenant, &id, seq).await.map_err(std::io::Error::other)?;
                    Ok(chunk.map(|bytes| (Bytes::from(bytes), seq + 1)))
                }
            }))
        }
    };
    Ok((row, body))
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), "application/pdf");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff("plain words, caf\u{e9}".as_bytes()), "text/plain");
        // A window cut inside a two-byte character is still text.
        assert_eq!(sniff(&"caf\u{e9}".as_bytes()[..4]), "text/plain");
        assert_eq!(
            sniff(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff"),
            "application/vnd.microsoft.portable-executable"
        );
        assert_eq!(sniff(b"text\0with a NUL"), "application/octet-stream");
    }
}
