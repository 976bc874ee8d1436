/*
 * io/npz: read-only access to NumPy .npz archives (a zip of .npy files), through libzip.
 *
 * Used for big_vision's VQ-VAE weights (vae-oid.npz, spec section 9.3): float32 arrays saved
 * with np.savez (stored entries) or np.savez_compressed (deflate). libzip does the zip side
 * (central directory, ZIP64, deflate, CRC); this file checks everything above it as the
 * safetensors loader does: entry sizes against a cap before anything is allocated for them,
 * the .npy magic, version and header length against the entry size, the header dictionary
 * (descr, fortran_order, shape: nothing else, nothing missing), rank and dimensions with
 * overflow checks, and that the data is exactly shape x item size bytes.
 */
#ifndef PG_IO_NPZ_H
#define PG_IO_NPZ_H

#include "core/core.h"

#define PG__NPY_MAX_DIMS 8
/* Largest entry read by default (vae-oid.npz's largest array is well under 1 MiB). */
#define PG__NPZ_MAX_ENTRY ((uint64_t)256 * 1024 * 1024)

typedef struct pg__npz pg__npz;

/* One array converted to float32 (the file may hold <f4, <f8 or <f2), C order. */
typedef struct pg__npy {
    uint32_t ndim;
    uint64_t shape[PG__NPY_MAX_DIMS];
    uint64_t count; /* product of shape (1 for a scalar) */
    float *data;    /* count values, owned (free with pg__npy_free) */
} pg__npy;

/* Opens `path`: PG_ERR_NOT_FOUND, _IO, _FORMAT (not a zip, inconsistent archive), _LIMIT,
 * _OUT_OF_MEMORY, with the path in the message. */
pg_status pg__npz_open(pg__npz **out, const char *path);
/* The same on an archive held in memory (not copied: `buf` must outlive the result); entries
 * above max_entry bytes are refused (PG_ERR_LIMIT). `what` names it in messages. */
pg_status pg__npz_open_memory(pg__npz **out, const void *buf, size_t size, const char *what,
                              uint64_t max_entry);
void pg__npz_close(pg__npz *z);

/* The entries of the archive (any name; arrays are the ones ending in ".npy"). */
size_t pg__npz_count(const pg__npz *z);
/* Entry i's name (borrowed from libzip, valid while z is open), NULL if it has none. */
const char *pg__npz_entry_name(const pg__npz *z, size_t i);

/* Reads array `name` (the entry `name`.npy) as float32. PG_ERR_NOT_FOUND when there is no such
 * entry, PG_ERR_FORMAT for a broken entry or .npy header, PG_ERR_UNSUPPORTED for another dtype,
 * big-endian data or Fortran order, PG_ERR_LIMIT for a huge entry. On failure *out is zeroed. */
pg_status pg__npz_read_f32(pg__npz *z, const char *name, pg__npy *out);

/* Parses one .npy image held in memory (what pg__npz_read_f32 does after unzipping). */
pg_status pg__npy_parse_f32(const uint8_t *buf, size_t size, const char *what, pg__npy *out);

void pg__npy_free(pg__npy *a);

#endif /* PG_IO_NPZ_H */
