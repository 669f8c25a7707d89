//! One mechanism for every file a run writes: the run declares its inputs and outputs up front
//! ([`Outputs`]), [`Outputs::check`] refuses unsafe destinations before any work, each output is
//! written to a hidden staged file beside its destination ([`OutputSet::stage`]), and
//! [`OutputSet::commit`] renames them all into place only when every one is complete.
//!
//! # What is refused (by [`Outputs::check`], before any work)
//! - an output that is also an input, or that is another output of the same run: paths are
//!   compared after resolving symbolic links, `.` and `..` (for a file that does not exist yet,
//!   its nearest existing folder is resolved), and existing files are also compared by identity
//!   (device and inode), so a hard link or a second name for the same file is caught too;
//! - an existing output that is not a regular file (a folder, a device such as `/dev/null`, a
//!   FIFO, a socket). A symbolic link to a regular file is followed: the file it points at is
//!   replaced and the link is kept; a link that points at nothing is refused;
//! - an output whose folder does not exist, unless the run creates it ([`Outputs::folder`]).
//!
//! # What is guaranteed
//! - Every write is checked, including the gzip trailer, the flush of each buffer and the
//!   final `fsync` of each staged file: a full disk or an I/O error fails the run.
//! - Until [`OutputSet::commit`], no destination is touched. If the run fails (an error, a
//!   panic that unwinds, a dropped set), every staged and scratch file is removed and every
//!   previous file is as it was.
//! - `commit` first keeps each previous file under a hidden backup name (a hard link, or a copy
//!   where the file system has none), then renames the staged files into place one by one and
//!   `fsync`s their folders. If a rename or a sync fails midway, the files already renamed are
//!   put back from their backups (or removed, where there was no previous file), so the set of
//!   outputs is either all new or all old. The backups are removed after success. The renames
//!   are atomic one by one, not as a group: another process reading the outputs *during* a
//!   commit may see some new and some old files.
//! - Signals: the library installs no handler. Every staged, scratch and backup file is listed
//!   in a process-wide registry; a program that handles SIGINT/SIGTERM calls
//!   [`remove_staged`] before it exits (the `poolrank` binary does, exiting 130/143). It waits
//!   for a commit in progress to finish or roll back, and afterwards no file can be staged or
//!   committed, so the destinations hold either the previous files or the complete new set.
//! - Not covered: SIGKILL, a power loss or a crash of the machine can leave hidden staged files
//!   (`.NAME.PID.N.tmp`) beside the destinations; the destinations themselves are never partial.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::error::{Error, Result};

/// Hidden files of this process that are not (yet) outputs: staged, scratch and backup files.
struct Registry {
    paths: BTreeSet<PathBuf>,
    /// Set by [`remove_staged`]: the process is exiting, nothing more may be staged.
    closing: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    paths: BTreeSet::new(),
    closing: false,
});

/// Makes each hidden name unique within the process (several runs may share a folder).
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn registry() -> MutexGuard<'static, Registry> {
    // A panic while holding the lock leaves the set consistent (inserts and removes are single
    // calls), so a poisoned lock is still usable.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn exiting() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::Interrupted, "the process is exiting")
}

/// Removes every staged, scratch and backup file of this process and refuses any later one;
/// returns how many were removed. Call it from a signal handler's thread before exiting; it
/// waits for a commit in progress.
pub fn remove_staged() -> usize {
    let mut reg = registry();
    reg.closing = true;
    let mut removed = 0;
    for p in std::mem::take(&mut reg.paths) {
        if std::fs::remove_file(&p).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The hidden files this process has staged and not yet committed or removed.
pub fn staged_paths() -> Vec<PathBuf> {
    registry().paths.iter().cloned().collect()
}

/// Creates a new hidden file `.NAME.PID.N.TAG` beside `dest` and registers it, in one step
/// under the registry's lock so that [`remove_staged`] never misses one.
fn create_hidden(dest: &Path, tag: &str) -> std::io::Result<(PathBuf, File)> {
    let dir = parent_of(dest);
    let name = dest
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file path"))?
        .to_string_lossy();
    let mut reg = registry();
    if reg.closing {
        return Err(exiting());
    }
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.{}.{n}.{tag}", std::process::id()));
        // create_new: never truncate a file left by an earlier process with the same pid.
        match File::options().write(true).create_new(true).open(&path) {
            Ok(file) => {
                reg.paths.insert(path.clone());
                return Ok((path, file));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes a hidden file and forgets it.
fn remove_hidden(path: &Path) {
    let mut reg = registry();
    if reg.paths.remove(path) {
        let _ = std::fs::remove_file(path);
    }
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The files of one run, unchecked: what it reads and what it will write.
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    inputs: Vec<PathBuf>,
    outputs: Vec<PathBuf>,
    folders: Vec<PathBuf>,
}

impl Outputs {
    /// No files yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A file the run reads (it may not exist; the reader reports that).
    pub fn input(mut self, path: impl AsRef<Path>) -> Self {
        self.inputs.push(path.as_ref().to_path_buf());
        self
    }

    /// Files the run reads: any iterator of paths, e.g. an `Option` for one that may be absent.
    pub fn inputs<P: AsRef<Path>>(mut self, paths: impl IntoIterator<Item = P>) -> Self {
        self.inputs
            .extend(paths.into_iter().map(|p| p.as_ref().to_path_buf()));
        self
    }

    /// A file the run writes.
    pub fn output(mut self, path: impl AsRef<Path>) -> Self {
        self.outputs.push(path.as_ref().to_path_buf());
        self
    }

    /// Files the run writes: any iterator of paths, e.g. an `Option`.
    pub fn outputs<P: AsRef<Path>>(mut self, paths: impl IntoIterator<Item = P>) -> Self {
        self.outputs
            .extend(paths.into_iter().map(|p| p.as_ref().to_path_buf()));
        self
    }

    /// A folder the run creates (with its parents) when its outputs are staged.
    pub fn folder(mut self, path: impl AsRef<Path>) -> Self {
        self.folders.push(path.as_ref().to_path_buf());
        self
    }

    /// Refuses an output that is an input, another output, or an existing file that is not a
    /// regular file (see the [module rules](self)); nothing is written.
    ///
    /// # Errors
    /// [`Error::OutputRefused`] naming the output and the reason; [`Error::Io`] when a path
    /// cannot be examined.
    pub fn check(self) -> Result<OutputSet> {
        let folders: Vec<PathBuf> = self
            .folders
            .iter()
            .map(|f| resolve(f).map_err(|e| Error::io(f, e)))
            .collect::<Result<_>>()?;
        let inputs: Vec<(PathBuf, Identity)> = self
            .inputs
            .iter()
            .map(|p| examine_input(p).map(|id| (p.clone(), id)))
            .collect::<Result<_>>()?;
        let mut slots: Vec<Slot> = Vec::with_capacity(self.outputs.len());
        for path in &self.outputs {
            let (dest, id) = examine_output(path, &folders)?;
            if let Some((input, _)) = inputs.iter().find(|(_, other)| id.same(other)) {
                return Err(refused(
                    path,
                    format!(
                        "it is also an input of this run ({}); write the output elsewhere",
                        input.display()
                    ),
                ));
            }
            if let Some(other) = slots.iter().find(|s| id.same(&s.id)) {
                return Err(refused(
                    path,
                    format!(
                        "it is also another output of this run ({}); give each output its own \
                         file",
                        other.path.display()
                    ),
                ));
            }
            slots.push(Slot {
                path: path.clone(),
                dest,
                id,
                staged: None,
            });
        }
        Ok(OutputSet {
            slots,
            folders: self.folders,
        })
    }
}

fn refused(path: &Path, reason: impl Into<String>) -> Error {
    Error::OutputRefused {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Where a path leads: the resolved path, and the file's identity when it exists.
#[derive(Clone, Debug)]
struct Identity {
    resolved: PathBuf,
    inode: Option<(u64, u64)>,
}

impl Identity {
    fn same(&self, other: &Identity) -> bool {
        self.resolved == other.resolved
            || matches!((self.inode, other.inode), (Some(a), Some(b)) if a == b)
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    // Resolved paths alone elsewhere.
    None
}

/// An absolute path with symbolic links, `.` and `..` resolved in its existing part, and `.`
/// and `..` applied lexically in the part that does not exist yet.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let abs = std::path::absolute(path)?;
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(mut base) => {
                for c in rest.iter().rev() {
                    match c {
                        Component::ParentDir => {
                            base.pop();
                        }
                        Component::CurDir => {}
                        c => base.push(c),
                    }
                }
                return Ok(base);
            }
            Err(_) => match (existing.parent(), existing.components().next_back()) {
                (Some(parent), Some(last)) => {
                    rest.push(last);
                    existing = parent;
                }
                _ => return Ok(abs),
            },
        }
    }
}

fn examine_input(path: &Path) -> Result<Identity> {
    let resolved = resolve(path).map_err(|e| Error::io(path, e))?;
    let inode = std::fs::metadata(path).ok().as_ref().and_then(inode);
    Ok(Identity { resolved, inode })
}

/// The destination to replace (a symbolic link's target) and its identity.
fn examine_output(path: &Path, folders: &[PathBuf]) -> Result<(PathBuf, Identity)> {
    if path.file_name().is_none() {
        return Err(refused(path, "it names a folder, not a file"));
    }
    match std::fs::symlink_metadata(path) {
        Ok(link) => {
            let meta = if link.file_type().is_symlink() {
                std::fs::metadata(path).map_err(|_| {
                    refused(
                        path,
                        "it is a symbolic link to nothing; remove it or point it at a file",
                    )
                })?
            } else {
                link
            };
            if !meta.is_file() {
                return Err(refused(
                    path,
                    format!(
                        "it exists and is {}, not a regular file; only regular files are replaced",
                        kind_of(&meta)
                    ),
                ));
            }
            let dest = path.canonicalize().map_err(|e| Error::io(path, e))?;
            let id = Identity {
                resolved: dest.clone(),
                inode: inode(&meta),
            };
            Ok((dest, id))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dest = resolve(path).map_err(|e| Error::io(path, e))?;
            let dir = parent_of(&dest);
            let created = folders.iter().any(|f| dir.starts_with(f));
            if !created && !dir.is_dir() {
                return Err(refused(
                    path,
                    format!("its folder {} does not exist", parent_of(path).display()),
                ));
            }
            let id = Identity {
                resolved: dest.clone(),
                inode: None,
            };
            Ok((dest, id))
        }
        Err(e) => Err(Error::io(path, e)),
    }
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}

/// One declared output.
#[derive(Debug)]
struct Slot {
    /// As the caller named it (for messages and look-ups).
    path: PathBuf,
    /// The file to replace: the resolved path.
    dest: PathBuf,
    id: Identity,
    /// The complete staged file, once finished.
    staged: Option<PathBuf>,
}

/// A checked set of outputs; see the [module rules](self). Dropping it without
/// [`OutputSet::commit`] removes every staged file and leaves the destinations as they were.
#[derive(Debug)]
pub struct OutputSet {
    slots: Vec<Slot>,
    folders: Vec<PathBuf>,
}

impl OutputSet {
    fn slot(&self, path: &Path) -> Result<usize> {
        self.slots
            .iter()
            .position(|s| s.path == path)
            .ok_or_else(|| {
                refused(
                    path,
                    "it was not declared as an output of this run (a bug in poolrank)",
                )
            })
    }

    fn make_folders(&self) -> Result<()> {
        for f in &self.folders {
            std::fs::create_dir_all(f).map_err(|e| Error::io(f, e))?;
        }
        Ok(())
    }

    /// Starts the staged file of the declared output `path`; when `gzip`, bytes are
    /// gzip-compressed. Finish it with [`OutputSet::finish`].
    ///
    /// # Errors
    /// [`Error::Io`] when the staged file cannot be created.
    pub fn stage(&self, path: &Path, gzip: bool) -> Result<StagedFile> {
        let slot = &self.slots[self.slot(path)?];
        self.make_folders()?;
        let (tmp, file) = create_hidden(&slot.dest, "tmp").map_err(|e| Error::io(path, e))?;
        let buf = BufWriter::with_capacity(1 << 16, file);
        let sink = if gzip {
            Sink::Gzip(flate2::write::GzEncoder::new(
                buf,
                flate2::Compression::fast(),
            ))
        } else {
            Sink::Plain(buf)
        };
        Ok(StagedFile {
            path: path.to_path_buf(),
            tmp,
            sink: Some(sink),
        })
    }

    /// Completes a staged file: finishes the gzip stream, flushes, `fsync`s, and keeps it for
    /// [`OutputSet::commit`]. Staging the same output again replaces the earlier file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the output when a write, the flush or the sync fails (a full disk).
    pub fn finish(&mut self, mut file: StagedFile) -> Result<()> {
        let index = self.slot(&file.path)?;
        let sink = file.sink.take().ok_or_else(|| {
            Error::io(
                &file.path,
                std::io::Error::other("staged file already closed"),
            )
        })?;
        let done = (|| -> std::io::Result<()> {
            let buf = match sink {
                Sink::Plain(b) => b,
                Sink::Gzip(g) => g.finish()?,
            };
            let file = buf.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()
        })();
        if let Err(e) = done {
            remove_hidden(&file.tmp);
            return Err(Error::io(&file.path, e));
        }
        if let Some(old) = self.slots[index].staged.replace(file.tmp.clone()) {
            remove_hidden(&old);
        }
        Ok(())
    }

    /// Stages the declared output `path` with the bytes `fill` writes, and finishes it.
    ///
    /// # Errors
    /// [`Error::Io`] naming the output when `fill` or a write fails.
    pub fn write(
        &mut self,
        path: &Path,
        fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> Result<()> {
        let mut file = self.stage(path, false)?;
        fill(&mut file).map_err(|e| Error::io(path, e))?;
        self.finish(file)
    }

    /// A scratch file beside the declared output `path` (e.g. a member assembled into an
    /// archive later), open for writing; removed when the [`ScratchFile`] is dropped, and by
    /// [`remove_staged`].
    ///
    /// # Errors
    /// [`Error::Io`] when it cannot be created.
    pub fn scratch(&self, path: &Path, tag: &str) -> Result<(ScratchFile, File)> {
        let slot = &self.slots[self.slot(path)?];
        self.make_folders()?;
        let (tmp, file) = create_hidden(&slot.dest, tag).map_err(|e| Error::io(path, e))?;
        Ok((ScratchFile { path: tmp }, file))
    }

    /// Renames every staged file into place, all or none (see the [module rules](self)).
    ///
    /// # Errors
    /// An error when an output was never finished, or [`Error::Io`] when keeping a backup, a
    /// rename or a folder sync fails; the previous files are then back in place.
    pub fn commit(mut self) -> Result<()> {
        if let Some(s) = self.slots.iter().find(|s| s.staged.is_none()) {
            return Err(Error::io(
                &s.path,
                std::io::Error::other("the output was never written (a bug in poolrank)"),
            ));
        }
        let mut reg = registry();
        if reg.closing {
            let first = self
                .slots
                .first()
                .map_or(Path::new("."), |s| s.path.as_path());
            return Err(Error::io(first, exiting()));
        }
        let result = commit_locked(&mut reg, &self.slots);
        // Committed or rolled back: either way the staged files are gone.
        for s in &mut self.slots {
            if let Some(tmp) = s.staged.take() {
                if reg.paths.remove(&tmp) && result.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
            }
        }
        result
    }
}

/// The renames, under the registry's lock so that a signal handler waits for them.
fn commit_locked(reg: &mut Registry, slots: &[Slot]) -> Result<()> {
    // 1. Keep each previous file under a backup name.
    let mut backups: Vec<Option<PathBuf>> = Vec::with_capacity(slots.len());
    let drop_backups = |reg: &mut Registry, backups: &[Option<PathBuf>]| {
        for b in backups.iter().flatten() {
            reg.paths.remove(b);
            let _ = std::fs::remove_file(b);
        }
    };
    for s in slots {
        match backup(reg, &s.dest) {
            Ok(b) => backups.push(b),
            Err(e) => {
                drop_backups(reg, &backups);
                return Err(Error::io(&s.path, e));
            }
        }
    }
    // 2. Rename in order; 3. sync the folders. On failure, put back what was renamed.
    let mut renamed = 0;
    let mut failure = None;
    for s in slots {
        let tmp = s.staged.as_ref().expect("checked above");
        if let Err(e) = std::fs::rename(tmp, &s.dest) {
            failure = Some(Error::io(&s.path, e));
            break;
        }
        renamed += 1;
    }
    if failure.is_none() {
        let mut dirs: Vec<&Path> = slots.iter().map(|s| parent_of(&s.dest)).collect();
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            if let Err(e) = sync_dir(d) {
                failure = Some(Error::io(d, e));
                break;
            }
        }
    }
    if let Some(e) = failure {
        let mut kept = Vec::new();
        for (s, b) in slots.iter().zip(&mut backups).take(renamed) {
            match b.take() {
                Some(b) => {
                    if let Err(re) = std::fs::rename(&b, &s.dest) {
                        // Never delete the only copy of a previous file: leave it and say where.
                        reg.paths.remove(&b);
                        kept.push(format!(
                            "{} could not be put back ({re}); it is in {}",
                            s.dest.display(),
                            b.display()
                        ));
                    } else {
                        reg.paths.remove(&b);
                    }
                }
                None => {
                    let _ = std::fs::remove_file(&s.dest);
                }
            }
        }
        drop_backups(reg, &backups);
        if kept.is_empty() {
            return Err(e);
        }
        return Err(Error::io(
            &slots[0].path,
            std::io::Error::other(format!("{e}; {}", kept.join("; "))),
        ));
    }
    drop_backups(reg, &backups);
    Ok(())
}

/// A second name for the file at `dest` (a hard link, else a copy); `None` when there is none.
fn backup(reg: &mut Registry, dest: &Path) -> std::io::Result<Option<PathBuf>> {
    if !dest.exists() {
        return Ok(None);
    }
    let name = dest
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file path"))?
        .to_string_lossy();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let b = parent_of(dest).join(format!(".{name}.{}.{n}.bak", std::process::id()));
    if std::fs::hard_link(dest, &b).is_err() {
        std::fs::copy(dest, &b)?;
        File::open(&b)?.sync_all()?;
    }
    reg.paths.insert(b.clone());
    Ok(Some(b))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    // Folders cannot be opened for syncing elsewhere; the renames are as durable as the
    // file system makes them.
    Ok(())
}

impl Drop for OutputSet {
    fn drop(&mut self) {
        for s in &mut self.slots {
            if let Some(tmp) = s.staged.take() {
                remove_hidden(&tmp);
            }
        }
    }
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(flate2::write::GzEncoder<BufWriter<File>>),
}

/// An output being written to its staged file; removed when dropped unless passed to
/// [`OutputSet::finish`]. Write errors are `std::io::Error`s: map them with the
/// [`StagedFile::path`] (or use [`StagedFile::write_bytes`]).
pub struct StagedFile {
    path: PathBuf,
    tmp: PathBuf,
    sink: Option<Sink>,
}

impl StagedFile {
    /// The output's path as declared.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes bytes; an error names the output.
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.write_all(bytes).map_err(|e| Error::io(&self.path, e))
    }
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.sink {
            Some(Sink::Plain(w)) => w.write(buf),
            Some(Sink::Gzip(w)) => w.write(buf),
            None => Err(std::io::Error::other("staged file already closed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.sink {
            Some(Sink::Plain(w)) => w.flush(),
            Some(Sink::Gzip(w)) => w.flush(),
            None => Ok(()),
        }
    }
}

/// Seeking is for archive writers (zip) on plain files; a gzip stream cannot seek.
impl std::io::Seek for StagedFile {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        match &mut self.sink {
            Some(Sink::Plain(w)) => w.seek(pos),
            Some(Sink::Gzip(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "a gzip stream cannot seek",
            )),
            None => Err(std::io::Error::other("staged file already closed")),
        }
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if self.sink.take().is_some() {
            remove_hidden(&self.tmp);
        }
    }
}

impl std::fmt::Debug for StagedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedFile")
            .field("path", &self.path)
            .field("tmp", &self.tmp)
            .finish()
    }
}

/// A hidden temporary file beside an output, removed when dropped.
#[derive(Debug)]
pub struct ScratchFile {
    path: PathBuf,
}

impl ScratchFile {
    /// The file's path, to read it back.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        remove_hidden(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn nothing_changes_until_commit_and_a_dropped_set_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.json"));
        std::fs::write(&a, "old a").unwrap();
        let mut set = Outputs::new().output(&a).output(&b).check().unwrap();
        set.write(&a, |w| w.write_all(b"new a")).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"old a");
        drop(set);
        assert_eq!(names(dir.path()), ["a.csv"]);
        assert_eq!(std::fs::read(&a).unwrap(), b"old a");

        let mut set = Outputs::new().output(&a).output(&b).check().unwrap();
        set.write(&a, |w| w.write_all(b"new a")).unwrap();
        let mut f = set.stage(&b, false).unwrap();
        f.write_bytes(b"new b").unwrap();
        set.finish(f).unwrap();
        set.commit().unwrap();
        assert_eq!(names(dir.path()), ["a.csv", "b.json"]);
        assert_eq!(std::fs::read(&a).unwrap(), b"new a");
        assert_eq!(std::fs::read(&b).unwrap(), b"new b");
        assert!(staged_paths().iter().all(|p| !p.starts_with(dir.path())));
    }

    #[test]
    fn a_failed_write_and_an_unfinished_output_commit_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut set = Outputs::new().output(&a).output(&b).check().unwrap();
        set.write(&a, |w| w.write_all(b"a")).unwrap();
        let err = set
            .write(&b, |w| {
                w.write_all(b"partial")?;
                Err(std::io::Error::other("boom"))
            })
            .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        assert!(set.commit().is_err(), "b was never finished");
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn a_failed_rename_puts_the_previous_files_back() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "old a").unwrap();
        let mut set = Outputs::new().output(&a).output(&b).check().unwrap();
        set.write(&a, |w| w.write_all(b"new a")).unwrap();
        set.write(&b, |w| w.write_all(b"new b")).unwrap();
        // b's destination turns into a non-empty folder after the check: its rename fails.
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("x"), "x").unwrap();
        assert!(set.commit().is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"old a");
        assert_eq!(names(dir.path()), ["a", "b"]);
    }

    #[test]
    fn refuses_inputs_repeated_outputs_and_non_files() {
        let dir = tempfile::tempdir().unwrap();
        let pool = dir.path().join("pool.fps");
        std::fs::write(&pool, "x").unwrap();
        let msg = |o: Outputs| o.check().unwrap_err().to_string();
        let other_name = dir.path().join(".").join("pool.fps");
        let e = msg(Outputs::new().input(&pool).output(&other_name));
        assert!(e.contains("also an input"), "{e}");
        let link = dir.path().join("hard.fps");
        std::fs::hard_link(&pool, &link).unwrap();
        let e = msg(Outputs::new().input(&pool).output(&link));
        assert!(e.contains("also an input"), "{e}");
        let x = dir.path().join("x.csv");
        let e = msg(Outputs::new()
            .output(&x)
            .output(dir.path().join("sub/../x.csv")));
        assert!(e.contains("another output"), "{e}");
        let e = msg(Outputs::new().output(dir.path()));
        assert!(
            e.contains("not a regular file") || e.contains("folder"),
            "{e}"
        );
        let e = msg(Outputs::new().output(dir.path().join("nodir/s.json")));
        assert!(e.contains("does not exist"), "{e}");
        Outputs::new()
            .folder(dir.path().join("new"))
            .output(dir.path().join("new/s.json"))
            .check()
            .unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_to_a_file_replaces_the_file_and_keeps_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let (target, link) = (dir.path().join("t.csv"), dir.path().join("l.csv"));
        std::fs::write(&target, "old").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = Outputs::new()
            .input(&target)
            .output(&link)
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("also an input"), "{e}");
        let mut set = Outputs::new().output(&link).check().unwrap();
        set.write(&link, |w| w.write_all(b"new")).unwrap();
        set.commit().unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        let dangling = dir.path().join("d.csv");
        std::os::unix::fs::symlink(dir.path().join("none"), &dangling).unwrap();
        let e = Outputs::new().output(&dangling).check().unwrap_err();
        assert!(e.to_string().contains("link to nothing"), "{e}");
    }

    #[test]
    fn gzip_is_finished_with_its_trailer() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.gz");
        let mut set = Outputs::new().output(&p).check().unwrap();
        let mut f = set.stage(&p, true).unwrap();
        f.write_bytes(b"hello").unwrap();
        set.finish(f).unwrap();
        set.commit().unwrap();
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(&p).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello");
    }
}
