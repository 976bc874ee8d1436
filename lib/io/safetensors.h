/*
 * io/safetensors: read-only access to .safetensors files (spec §2.2).
 *
 * Layout: an 8-byte little-endian header length n, n bytes of JSON describing every tensor
 * ({"dtype", "shape", "data_offsets": [begin, end]} relative to the data buffer that follows
 * the header), then the data buffer. pg__st_open memory-maps the whole file read-only; the
 * tensor data is used in place (pg__st_tensor.data points into the map), so opening a file
 * reads only its header.
 *
 * Everything in the header is untrusted: the parser checks the header length against the
 * file size and a hard cap, the JSON types, dtype names, shape ranks and sizes (with overflow
 * checks), that data_offsets lie inside the data buffer and match dtype x shape, and that no
 * two tensors overlap. pg__st_parse_memory runs exactly the same checks on a file image held
 * in memory (the fuzz target and the tests use it).
 */
#ifndef PG_IO_SAFETENSORS_H
#define PG_IO_SAFETENSORS_H

#include "core/core.h"

/* Largest header accepted (real checkpoints have headers of tens of KB). */
#define PG__ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)
/* Largest tensor rank accepted. */
#define PG__ST_MAX_DIMS 8

/* Every element type the safetensors format defines. The loader uses only F32/F16/BF16 but
 * the parser knows them all, so that a file with e.g. F64 tensors is reported as
 * "unsupported dtype" rather than "malformed". */
typedef enum pg__st_dtype {
    PG__ST_BOOL,
    PG__ST_U8,
    PG__ST_I8,
    PG__ST_F8_E4M3,
    PG__ST_F8_E5M2,
    PG__ST_I16,
    PG__ST_U16,
    PG__ST_F16,
    PG__ST_BF16,
    PG__ST_I32,
    PG__ST_U32,
    PG__ST_F32,
    PG__ST_I64,
    PG__ST_U64,
    PG__ST_F64,
} pg__st_dtype;

/* The format's spelling of a dtype ("BF16"); size of one element in bytes. */
const char *pg__st_dtype_name(pg__st_dtype dt);
size_t pg__st_dtype_size(pg__st_dtype dt);

typedef struct pg__st_tensor {
    char *name;             /* as stored in the header (NUL-terminated, owned) */
    pg__st_dtype dtype;
    int32_t ndim;
    int64_t shape[PG__ST_MAX_DIMS];
    uint64_t n_elements;    /* product of shape (1 for a scalar) */
    uint64_t begin, end;    /* byte range inside the data buffer */
    const void *data;       /* the bytes, inside the file's map (or the memory image) */
} pg__st_tensor;

typedef struct pg__st_file {
    char *path;             /* for messages */
    void *map;              /* the whole file, mapped read-only (NULL for a memory image) */
    size_t map_size;
    uint64_t header_size;   /* n */
    const uint8_t *data;    /* start of the data buffer */
    uint64_t data_size;
    pg__st_tensor *tensors; /* in header order */
    size_t n_tensors;
} pg__st_file;

/* Opens and maps `path`, parses and validates its header. Errors name the file and, where
 * one is at fault, the tensor: PG_ERR_NOT_FOUND, _IO, _FORMAT, _LIMIT, _OUT_OF_MEMORY. */
pg_status pg__st_open(pg__st_file **out, const char *path);

/* Parses a complete file image held in memory (not copied: the tensors point into `buf`,
 * which must outlive the result). `path` is used only in messages. */
pg_status pg__st_parse_memory(pg__st_file **out, const void *buf, size_t size,
                              const char *path);

/* Unmaps and frees (NULL is fine). */
void pg__st_close(pg__st_file *f);

/* The tensor called `name`, or NULL (linear search; the loader builds its own index). */
const pg__st_tensor *pg__st_find(const pg__st_file *f, const char *name);

#endif /* PG_IO_SAFETENSORS_H */
