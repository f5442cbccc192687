/* slot_writer.c - write an image into a slot, proven by reading it back. */
#include "abota/slot_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abota/crc.h"
#include "abota/fileio.h"
#include "abota/powercut.h"

/* The read-back check runs on its own thread, one segment behind the writer:
 * a finished segment is made durable (fdatasync), its cached pages are
 * dropped and it is read back from the medium and compared with the CRC-32
 * of the very bytes handed to pwrite (which the caller hashes against the
 * signed SHA-256).  Reading the image back after the whole write took a
 * third of the install time; overlapped, what is left is the last segment.
 * The check is about the medium and the device mapping -- lost or
 * misdirected writes, bad flash -- not about an adversary, so a CRC
 * (libdeflate, ~10 GB/s) is enough.  (O_DIRECT reads were tried: on ext4
 * they hold the inode lock and stall the writer's pwrite; with 1 and 4 MiB
 * requests they saved 0.1 s of CPU and cost 0.2 s of wall time.) */
#define SEGMENT_BYTES (32u << 20)
#define READBACK_BUF (256u << 10)
#define READBACK_STACK (128u << 10)
/* The granularity in_place is asked at within a write (an adaptive block). */
#define IN_PLACE_BLOCK 4096u

struct segment {
	uint64_t off; /* inside the slot */
	uint64_t len;
	uint32_t crc;
	bool has_state; /* the image hash state at off + len is known */
	struct digest_sha256_state state;
};

struct readback {
	int fd;            /* the slot */
	const char *label; /* the slot's name, for powercut.h */
	uint64_t base;     /* slot offset inside the device */
	uint8_t *buf;
	slot_writer_checkpoint_fn checkpoint;
	void *checkpoint_ctx;
	uint64_t drop_from; /* the first segment read back (readback_segment) */
	bool dropping;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* under lock */
	struct segment *segs;
	size_t n_segs, cap_segs, checked;
	bool closed, synced, failed;
	int ret;
	struct abota_error err;
};

struct slot_writer {
	struct slot_device *dev;
	const char *label;
	uint64_t off;
	struct segment seg; /* being written */
	struct readback rb;
	struct digest_sha256_ctx *hash;
	uint64_t zero_off, zero_len; /* zeros not written yet (zeros_flush) */
	bool lockstep;               /* see readback_wait() */
	slot_writer_progress_fn progress;
	void *progress_ctx;
	bool (*in_place)(void *ctx, uint64_t off, size_t len);
	void *in_place_ctx;
	uint64_t in_place_bytes;
};

/* The runs of data in [pos, end) of the slot's file: a file slot's zeroed
 * runs are unwritten extents, which the file system reports as holes (and
 * reads back as zeros it makes up, from no medium).  A block device, or a
 * file system without SEEK_DATA, is all data.  Mapped before anything of the
 * segment is read or advised: cached pages make a hole count as data. */
#define MAX_RUNS 64

struct run {
	uint64_t off, end;
};

static size_t map_data(int fd, uint64_t pos, uint64_t end, struct run *runs)
{
	size_t n = 0;
	while (pos < end) {
		off_t d = lseek(fd, (off_t)pos, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break; /* a hole up to the end of the file */
		if (d < 0 || (uint64_t)d < pos)
			d = (off_t)pos; /* no SEEK_DATA: data */
		if ((uint64_t)d >= end)
			break;
		off_t h = lseek(fd, d, SEEK_HOLE);
		uint64_t e = h < 0 || (uint64_t)h <= (uint64_t)d || (uint64_t)h > end ? end : (uint64_t)h;
		if (n == MAX_RUNS - 1)
			e = end; /* fragmented: read the rest */
		runs[n++] = (struct run){ .off = (uint64_t)d, .end = e };
		pos = e;
	}
	return n;
}

/* Reads one durable segment back and compares its CRC.  Holes of a file
 * slot are not read: they hold no bytes on the medium and count as the
 * zeros they read as (crc_zeros: no I/O, nothing copied).  (Hashing what
 * is read back instead of what is written was tried: it moves the SHA-256
 * to this thread, which then trails the writer by more, and the install
 * took longer on a disk.) */
static int readback_segment(struct readback *rb, const struct segment *s, struct abota_error *err)
{
	uint64_t pos = rb->base + s->off, end = pos + s->len;
	/* Drop the cached pages so the read comes from the medium. */
	(void)posix_fadvise(rb->fd, (off_t)pos, (off_t)s->len, POSIX_FADV_DONTNEED);
	struct run runs[MAX_RUNS];
	size_t n = map_data(rb->fd, pos, end, runs);
	/* ... and have the kernel read the data ahead, so the medium works
	 * while this thread checks what already arrived. */
	for (size_t i = 0; i < n; i++)
		(void)posix_fadvise(rb->fd, (off_t)runs[i].off, (off_t)(runs[i].end - runs[i].off),
				    POSIX_FADV_WILLNEED);
	uint32_t crc = 0;
	int ret = 0;
	for (size_t i = 0; i <= n && ret == 0; i++) {
		uint64_t data = i < n ? runs[i].off : end;
		crc = crc_zeros(crc, data - pos);
		pos = data;
		uint64_t data_end = i < n ? runs[i].end : end;
		while (pos < data_end && ret == 0) {
			size_t len = READBACK_BUF;
			if (len > data_end - pos)
				len = (size_t)(data_end - pos);
			ret = fileio_pread_full(rb->fd, rb->buf, len, pos, err);
			if (ret == 0)
				crc = crc_update(crc, rb->buf, len);
			pos += len;
		}
	}
	if (ret == 0 && crc != s->crc)
		ret = abota_error_set(err, -EIO,
				      "read-back check failed: the %llu bytes at offset %llu differ from what was written",
				      (unsigned long long)s->len, (unsigned long long)s->off);
	/* Checked, the segment is not read again: its pages would otherwise
	 * stay cached -- the whole image, in place of the running system's
	 * own files, on a board whose RAM is the size of the image.  From
	 * the first segment on each time: the kernel drops a large folio only
	 * whole, and one straddles a segment boundary that is not aligned to
	 * it (a slot at an odd offset in a disk image). */
	if (!rb->dropping) {
		rb->drop_from = s->off;
		rb->dropping = true;
	}
	(void)posix_fadvise(rb->fd, (off_t)(rb->base + rb->drop_from),
			    (off_t)(s->off + s->len - rb->drop_from), POSIX_FADV_DONTNEED);
	return ret;
}

/* Waits for written segments, makes them durable with one fdatasync (unless
 * the writer's final one already did) and checks them in order. */
static void *readback_main(void *p)
{
	struct readback *rb = p;
	struct abota_error err = { 0 };
	int ret = 0;
	pthread_mutex_lock(&rb->lock);
	while (ret == 0) {
		while (rb->checked == rb->n_segs && !rb->closed)
			pthread_cond_wait(&rb->cond, &rb->lock);
		/* Closed without the final sync: the write failed, stop. */
		if (rb->checked == rb->n_segs || (rb->closed && !rb->synced))
			break;
		size_t upto = rb->n_segs;
		bool synced = rb->synced;
		pthread_mutex_unlock(&rb->lock);
		if (!synced)
			ret = powercut_sync(rb->fd, rb->label, &err);
		struct segment last = { 0 };
		for (size_t i = rb->checked; i < upto && ret == 0; i++) {
			pthread_mutex_lock(&rb->lock);
			struct segment s = rb->segs[i]; /* a push may move the array */
			pthread_mutex_unlock(&rb->lock);
			ret = readback_segment(rb, &s, &err);
			last = s;
		}
		/* Before the segments count as checked: under fault injection
		 * the writer waits for that, so the journal's write points stay
		 * in one order. */
		if (ret == 0 && rb->checkpoint)
			ret = rb->checkpoint(rb->checkpoint_ctx, last.off + last.len,
					     last.has_state ? &last.state : NULL, &err);
		pthread_mutex_lock(&rb->lock);
		if (ret == 0)
			rb->checked = upto;
		pthread_cond_broadcast(&rb->cond); /* a writer in readback_wait() */
	}
	if (ret < 0) {
		rb->failed = true;
		rb->ret = ret;
		rb->err = err;
	}
	pthread_cond_broadcast(&rb->cond);
	pthread_mutex_unlock(&rb->lock);
	return NULL;
}

/* Hands a finished segment to the read-back thread; -ENOMEM or the error
 * the thread already hit (so a bad medium stops the write early). */
static int readback_push(struct readback *rb, const struct segment *s, struct abota_error *err)
{
	int ret = 0;
	pthread_mutex_lock(&rb->lock);
	if (rb->failed) {
		ret = rb->ret;
		if (err)
			*err = rb->err;
		goto out;
	}
	if (rb->n_segs == rb->cap_segs) {
		size_t cap = rb->cap_segs ? rb->cap_segs * 2 : 64;
		struct segment *n = realloc(rb->segs, cap * sizeof(*n));
		if (!n) {
			ret = abota_error_set(err, -ENOMEM, "out of memory");
			goto out;
		}
		rb->segs = n;
		rb->cap_segs = cap;
	}
	rb->segs[rb->n_segs++] = *s;
	pthread_cond_broadcast(&rb->cond);
out:
	pthread_mutex_unlock(&rb->lock);
	return ret;
}

static int readback_start(struct readback *rb, struct slot_device *dev, const char *label,
			  const struct slot_writer_opts *o, struct abota_error *err)
{
	memset(rb, 0, sizeof(*rb));
	rb->fd = dev->fd;
	rb->label = label;
	rb->base = dev->offset;
	rb->checkpoint = o->checkpoint;
	rb->checkpoint_ctx = o->checkpoint_ctx;
	rb->buf = fileio_buffer_alloc(READBACK_BUF);
	if (!rb->buf)
		return abota_error_set(err, -ENOMEM, "out of memory");
	if (pthread_mutex_init(&rb->lock, NULL) != 0)
		goto fail;
	if (pthread_cond_init(&rb->cond, NULL) != 0) {
		pthread_mutex_destroy(&rb->lock);
		goto fail;
	}
	pthread_attr_t attr;
	int ret = pthread_attr_init(&attr);
	if (ret == 0) {
		/* It only reads into rb->buf: a small stack keeps the RSS down. */
		pthread_attr_setstacksize(&attr, READBACK_STACK);
		ret = pthread_create(&rb->thread, &attr, readback_main, rb);
		pthread_attr_destroy(&attr);
	}
	if (ret == 0)
		return 0;
	pthread_cond_destroy(&rb->cond);
	pthread_mutex_destroy(&rb->lock);
fail:
	free(rb->buf);
	return abota_error_set(err, -ENOMEM, "cannot start the read-back thread");
}

/* The writer's final fdatasync covered everything written: the thread need
 * not sync the segments still to come.  (Also keeps the write points of a
 * small image -- one segment -- in a fixed order for powercut.h.) */
static void readback_set_synced(struct readback *rb)
{
	pthread_mutex_lock(&rb->lock);
	rb->synced = true;
	pthread_mutex_unlock(&rb->lock);
}

/* Tells the thread that no more segments come -- synced: the writer's final
 * fdatasync covers all of them; otherwise the write failed and the thread
 * stops -- waits for it and returns its verdict. */
static int readback_finish(struct readback *rb, bool synced, struct abota_error *err)
{
	pthread_mutex_lock(&rb->lock);
	rb->closed = true;
	rb->synced = synced;
	pthread_cond_broadcast(&rb->cond);
	pthread_mutex_unlock(&rb->lock);
	pthread_join(rb->thread, NULL);
	int ret = 0;
	if (rb->failed) {
		ret = rb->ret;
		if (err)
			*err = rb->err;
	}
	pthread_cond_destroy(&rb->cond);
	pthread_mutex_destroy(&rb->lock);
	free(rb->buf);
	free(rb->segs);
	return ret;
}

/* Under fault injection (powercut_armed) the writer waits for the read-back
 * thread after each segment, so the write points come in the same order in
 * every run and a campaign's cut at point N is reproducible. */
static void readback_wait(struct readback *rb)
{
	pthread_mutex_lock(&rb->lock);
	while (rb->checked < rb->n_segs && !rb->failed)
		pthread_cond_wait(&rb->cond, &rb->lock);
	pthread_mutex_unlock(&rb->lock);
}

/* Runs of zeros (an ext4 image's free space: a quarter of the benchmark's
 * 512 MiB rootfs, most of it at the end) are not written through the page
 * cache but zeroed in one call per run (fileio_zero_range): on a file slot
 * no data moves at all and the read-back of the run costs no I/O; on a
 * block device the block layer writes its zero page.  The run is flushed
 * before any other write, before a segment goes to the read-back thread
 * and before the final sync. */
static int zeros_flush(struct slot_writer *w, struct abota_error *err)
{
	if (w->zero_len == 0)
		return 0;
	int ret = powercut_zero(w->dev->fd, w->dev->offset + w->zero_off, (size_t)w->zero_len,
				w->label, err);
	w->zero_len = 0;
	return ret;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	/* memcmp stops at the first difference: ~free on data that is not zero */
	return len > 0 && p[0] == 0 && memcmp(p, p + 1, len - 1) == 0;
}

static int segment_close(struct slot_writer *w, struct abota_error *err)
{
	if (w->seg.len == 0)
		return 0;
	int ret = zeros_flush(w, err);
	if (ret < 0)
		return ret;
	w->seg.has_state = w->hash && digest_sha256_save(w->hash, &w->seg.state) == 0;
	/* Start the segment's writeback now: left to the kernel, it would begin
	 * only at the dirty threshold (a tenth of RAM), and the read-back
	 * thread's fdatasync would then have to start all of it.  Only a hint:
	 * durability still comes from that fdatasync. */
	(void)sync_file_range(w->dev->fd, (off_t)(w->dev->offset + w->seg.off), (off_t)w->seg.len,
			      SYNC_FILE_RANGE_WRITE);
	ret = readback_push(&w->rb, &w->seg, err);
	w->seg = (struct segment){ .off = w->off };
	if (ret == 0 && w->lockstep)
		readback_wait(&w->rb);
	return ret;
}

bool slot_writer_can_write(const char *img_type, const char *slot_type)
{
	if (!img_type || !slot_type)
		return false;
	bool raw_img = strcmp(img_type, "raw") == 0;
	if (strcmp(slot_type, "raw") == 0)
		return raw_img || !strcmp(img_type, "ext4") || !strcmp(img_type, "vfat") ||
		       !strcmp(img_type, "squashfs");
	if (strcmp(slot_type, "ext4") == 0)
		return raw_img || !strcmp(img_type, "ext4");
	if (strcmp(slot_type, "vfat") == 0)
		return raw_img || !strcmp(img_type, "vfat");
	return false;
}

int slot_writer_start(struct slot_device *dev, const struct slot_writer_opts *o,
		      struct slot_writer **out, struct abota_error *err)
{
	if (o->start > dev->size)
		return abota_error_set(err, -ENOSPC, "image offset %llu is past the slot's end",
				       (unsigned long long)o->start);
	struct slot_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return abota_error_set(err, -ENOMEM, "out of memory");
	*w = (struct slot_writer){ .dev = dev, .label = o->label, .off = o->start,
				   .seg = { .off = o->start }, .hash = o->hash,
				   .lockstep = powercut_armed(), .progress = o->progress,
				   .progress_ctx = o->progress_ctx, .in_place = o->in_place,
				   .in_place_ctx = o->in_place_ctx };
	int ret = readback_start(&w->rb, dev, o->label, o, err);
	if (ret < 0) {
		free(w);
		return ret;
	}
	*out = w;
	return 0;
}

/* One piece of a write at image offset off: in place (not written, counted),
 * all zeros (joins the zero run), or written. */
static int write_piece(struct slot_writer *w, const uint8_t *buf, size_t len, uint64_t off,
		       bool in_place, struct abota_error *err)
{
	int ret = 0;
	if (in_place) {
		/* Already there: nothing to write.  The zero run before it ends here. */
		ret = zeros_flush(w, err);
		w->seg.crc = crc_update(w->seg.crc, buf, len);
		w->in_place_bytes += len;
	} else if (len % 4096 == 0 && (w->dev->offset + off) % 4096 == 0 && all_zero(buf, len)) {
		if (w->zero_len == 0)
			w->zero_off = off;
		w->zero_len += len;
		w->seg.crc = crc_zeros(w->seg.crc, len);
	} else {
		ret = zeros_flush(w, err);
		if (ret == 0)
			ret = powercut_pwrite(w->dev->fd, buf, len, w->dev->offset + off, w->label, err);
		if (ret == 0)
			w->seg.crc = crc_update(w->seg.crc, buf, len);
	}
	return ret;
}

int slot_writer_write(void *p, const void *buf, size_t len, struct abota_error *err)
{
	struct slot_writer *w = p;
	if (len > w->dev->size - w->off)
		return abota_error_set(err, -ENOSPC, "image does not fit into the slot");
	if (w->seg.len == 0)
		w->seg.off = w->off;
	int ret = 0;
	const uint8_t *b = buf;
	if (w->in_place && len > 0 && len % IN_PLACE_BLOCK == 0 && w->off % IN_PLACE_BLOCK == 0) {
		/* Runs of blocks in place and of blocks not: a write mixing them (a
		 * 1 MiB chunk of an adaptive image of which the target holds all but
		 * a few blocks) skips every block that is there already. */
		bool ip = w->in_place(w->in_place_ctx, w->off, IN_PLACE_BLOCK);
		for (size_t done = 0; done < len && ret == 0;) {
			/* each block is asked once: the one that ends a run starts the next */
			size_t run = IN_PLACE_BLOCK;
			bool next = ip;
			while (done + run < len &&
			       (next = w->in_place(w->in_place_ctx, w->off + done + run,
						   IN_PLACE_BLOCK)) == ip)
				run += IN_PLACE_BLOCK;
			ret = write_piece(w, b + done, run, w->off + done, ip, err);
			done += run;
			ip = next;
		}
	} else {
		ret = write_piece(w, b, len, w->off,
				  w->in_place && len > 0 && w->in_place(w->in_place_ctx, w->off, len),
				  err);
	}
	if (ret < 0)
		return ret;
	w->seg.len += len;
	w->off += len;
	if (w->seg.len >= SEGMENT_BYTES) {
		ret = segment_close(w, err);
		if (ret < 0)
			return ret;
	}
	if (w->progress)
		w->progress(w->progress_ctx, w->off);
	return 0;
}

uint64_t slot_writer_offset(const struct slot_writer *w)
{
	return w->off;
}

uint64_t slot_writer_in_place(const struct slot_writer *w)
{
	return w->in_place_bytes;
}

int slot_writer_finish(struct slot_writer *w, bool complete, struct abota_error *err)
{
	int ret = 0;
	if (complete) {
		ret = zeros_flush(w, err);
		/* the final sync before the last segment goes to the thread */
		if (ret == 0)
			ret = powercut_sync(w->dev->fd, w->label, err);
		if (ret == 0) {
			readback_set_synced(&w->rb);
			ret = segment_close(w, err);
		}
	}
	/* Joined on every path; its verdict counts only when writing
	 * succeeded (then the final fdatasync covers all segments). */
	struct abota_error rb_err = { 0 };
	int rb_ret = readback_finish(&w->rb, complete && ret == 0, &rb_err);
	if (complete && ret == 0 && rb_ret < 0) {
		ret = rb_ret;
		if (err)
			*err = rb_err;
	}
	/* The kernel's read-ahead (of the read-back, or of an adaptive scan
	 * of the target's old content) ran past the image into the rest of
	 * the slot: that goes as well. */
	if (w->rb.dropping && w->dev->size > w->rb.drop_from)
		(void)posix_fadvise(w->dev->fd, (off_t)(w->dev->offset + w->rb.drop_from),
				    (off_t)(w->dev->size - w->rb.drop_from), POSIX_FADV_DONTNEED);
	free(w);
	return ret;
}
