/*
 * pg_model_load on broken model folders. Each case copies the tiny f32 fixture (config,
 * index, shards; no tokenizer) to a temporary folder, breaks one thing, and checks the
 * status and that pg_last_error() names the file and the tensor or key at fault. The last
 * cases are unusual but valid folders (new key spelling, one file, stored lm_head, F16
 * tensor, misaligned data) that must load.
 */
#include "harness.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model_edit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURE "models/tiny/f32"
#define S1 "model-00001-of-00002.safetensors"
#define S2 "model-00002-of-00002.safetensors"
#define INDEX "model.safetensors.index.json"
#define NORM "language_model.model.norm.weight"
#define QPROJ2 "language_model.model.layers.2.self_attn.q_proj.weight"

static pg_model *try_load(const char *dir, pg_status want, const char *needle1,
                          const char *needle2, int line)
{
    pg_model_options o;
    PG_MODEL_OPTIONS_INIT(&o);
    o.backend = "ref";
    o.n_threads = 1;
    pg_model *m = NULL;
    pg_status st = pg_model_load(&m, dir, &o);
    CHECK_MSG(st == want, "line %d: status %d (%s), wanted %d", line, (int)st, pg_last_error(),
              (int)want);
    if (st != PG_OK) {
        CHECK(m == NULL);
    }
    const char *needles[2] = { needle1, needle2 };
    for (int i = 0; i < 2 && st != PG_OK; i++) {
        if (needles[i]) {
            CHECK_MSG(strstr(pg_last_error(), needles[i]) != NULL, "line %d: '%s' lacks '%s'",
                      line, pg_last_error(), needles[i]);
        }
    }
    return m;
}
#define EXPECT(dir, want, n1, n2) pg_model_free(try_load((dir), (want), (n1), (n2), __LINE__))

/* ---- edits (each is one callback on a shard image) ---- */

static json_t *entry(st_image *im, const char *name)
{
    return json_object_get(im->header, name);
}

static void set_offsets(json_t *e, uint64_t begin, uint64_t end)
{
    json_object_set_new(e, "data_offsets", json_pack("[II]", (json_int_t)begin,
                                                     (json_int_t)end));
}

static uint64_t offset(json_t *e, size_t i)
{
    return (uint64_t)json_integer_value(json_array_get(json_object_get(e, "data_offsets"), i));
}

static void drop_tensor(st_image *im, void *name)
{
    json_object_del(im->header, name);
}

static void set_dtype(st_image *im, void *dtype)
{
    json_object_set_new(entry(im, NORM), "dtype", json_string(dtype));
}

static void swap_shape(st_image *im, void *unused)
{
    (void)unused;
    json_t *e = entry(im, QPROJ2);
    json_t *s = json_object_get(e, "shape");
    json_t *a = json_copy(json_array_get(s, 0));
    json_array_set(s, 0, json_array_get(s, 1));
    json_array_set_new(s, 1, a);
}

static void offsets_out_of_range(st_image *im, void *unused)
{
    (void)unused;
    json_t *e = entry(im, NORM);
    set_offsets(e, im->data_size - 8, im->data_size + 4 * 96 - 8);
}

static void offsets_overlap(st_image *im, void *unused)
{
    (void)unused;
    json_t *q = entry(im, QPROJ2);
    set_offsets(entry(im, NORM), offset(q, 0) + 4, offset(q, 0) + 4 + 4 * 96);
}

static void offsets_wrong_size(st_image *im, void *unused)
{
    (void)unused;
    json_t *e = entry(im, NORM);
    set_offsets(e, offset(e, 0), offset(e, 1) - 4);
}

/* Adds `name` as a 96-float tensor with fresh data. */
static void add_tensor(st_image *im, void *name)
{
    float v[96] = { 0 };
    size_t off = st_append(im, v, sizeof v);
    json_t *e = json_pack("{s:s, s:[i], s:[II]}", "dtype", "F32", "shape", 96, "data_offsets",
                          (json_int_t)off, (json_int_t)(off + sizeof v));
    json_object_set_new(im->header, name, e);
}

static void index_set(const char *dir, const char *tensor, const char *shard)
{
    json_t *j = read_json(in_dir(dir, INDEX));
    json_t *map = json_object_get(j, "weight_map");
    if (shard) {
        json_object_set_new(map, tensor, json_string(shard));
    } else {
        json_object_del(map, tensor);
    }
    CHECK(write_json(in_dir(dir, INDEX), j) == 0);
    json_decref(j);
}

/* ---- cases ---- */

static void test_folder_and_args(void)
{
    pg_model *m = (pg_model *)1;
    CHECK_EQ_INT(pg_model_load(NULL, "x", NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK_EQ_INT(pg_model_load(&m, NULL, NULL), PG_ERR_INVALID_ARGUMENT);
    CHECK(m == NULL);
    EXPECT("/nonexistent/model", PG_ERR_NOT_FOUND, "/nonexistent/model", NULL);
    char *dir = tmp_model_copy(FIXTURE);
    CHECK(dir != NULL);
    if (!dir) {
        return;
    }
    EXPECT(in_dir(dir, "config.json"), PG_ERR_INVALID_ARGUMENT, "not a folder", NULL);

    pg_model_options o;
    PG_MODEL_OPTIONS_INIT(&o);
    o.struct_size = 3;
    CHECK_EQ_INT(pg_model_load(&m, dir, &o), PG_ERR_INVALID_ARGUMENT);
    PG_MODEL_OPTIONS_INIT(&o);
    o.flags = 1u << 20;
    CHECK_EQ_INT(pg_model_load(&m, dir, &o), PG_ERR_INVALID_ARGUMENT);
    PG_MODEL_OPTIONS_INIT(&o);
    o.weight_dtype = PG_DTYPE_F32;
    CHECK_EQ_INT(pg_model_load(&m, dir, &o), PG_ERR_INVALID_ARGUMENT);
    PG_MODEL_OPTIONS_INIT(&o);
    o.n_threads = -1;
    CHECK_EQ_INT(pg_model_load(&m, dir, &o), PG_ERR_INVALID_ARGUMENT);
    PG_MODEL_OPTIONS_INIT(&o);
    o.backend = "no-such-backend";
    CHECK_EQ_INT(pg_model_load(&m, dir, &o), PG_ERR_NOT_FOUND);
    CHECK(strstr(pg_last_error(), "no-such-backend") != NULL);

    /* A newer caller's larger struct: init zeroes the fields unknown here, so the load
     * accepts it; a value set in one of them is refused as unsupported. */
    struct {
        pg_model_options o;
        uint64_t newer[2];
    } big;
    memset(&big, 0xab, sizeof big);
    pg_model_options_init(&big.o, sizeof big);
    CHECK(big.newer[0] == 0 && big.newer[1] == 0);
    big.o.flags = PG_MODEL_TOKENIZER_ONLY;
    CHECK_OK(pg_model_load(&m, dir, &big.o));
    pg_model_free(m);
    m = NULL;
    big.newer[1] = 1;
    CHECK_EQ_INT(pg_model_load(&m, dir, &big.o), PG_ERR_UNSUPPORTED);
    tmp_model_remove(dir);
}

static void test_config(void)
{
    static const struct {
        const char *json;
        pg_status want;
        const char *needle;
    } cases[] = {
        { "this is not json", PG_ERR_FORMAT, "not valid JSON" },
        { "[]", PG_ERR_FORMAT, "not a JSON object" },
        { "{\"text_config\":{}, \"vision_config\":{}}", PG_ERR_FORMAT, "model_type" },
        { "{\"model_type\":\"llava\"}", PG_ERR_UNSUPPORTED, "llava" },
        { "{\"model_type\":\"paligemma\"}", PG_ERR_FORMAT, "text_config" },
    };
    char *dir = tmp_model_copy(FIXTURE);
    if (!dir) {
        return;
    }
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        CHECK(write_bytes(in_dir(dir, "config.json"), cases[i].json, strlen(cases[i].json)) ==
              0);
        EXPECT(dir, cases[i].want, "config.json", cases[i].needle);
    }
    unlink(in_dir(dir, "config.json"));
    EXPECT(dir, PG_ERR_NOT_FOUND, "config.json", NULL);
    tmp_model_remove(dir);

    /* edits of the real config: a missing size, PaliGemma 1, a bad number */
    static const struct {
        const char *section, *key;
        json_t *(*value)(void);
        pg_status want;
        const char *needle;
    } edits[] = {
        { "text_config", "hidden_size", NULL, PG_ERR_FORMAT, "text_config.hidden_size" },
        { "vision_config", "patch_size", NULL, PG_ERR_FORMAT, "vision_config.patch_size" },
        { "text_config", "model_type", NULL, PG_ERR_UNSUPPORTED, "gemma2" },
        { "text_config", "num_key_value_heads", json_true, PG_ERR_FORMAT, "integer" },
        { "text_config", "num_attention_heads", json_false, PG_ERR_FORMAT, "integer" },
    };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        dir = tmp_model_copy(FIXTURE);
        if (!dir) {
            return;
        }
        json_t *cfg = read_json(in_dir(dir, "config.json"));
        json_t *sec = json_object_get(cfg, edits[i].section);
        if (edits[i].value) {
            json_object_set_new(sec, edits[i].key, edits[i].value());
        } else {
            json_object_del(sec, edits[i].key);
        }
        CHECK(write_json(in_dir(dir, "config.json"), cfg) == 0);
        json_decref(cfg);
        EXPECT(dir, edits[i].want, "config.json", edits[i].needle);
        tmp_model_remove(dir);
    }
    /* PaliGemma 1 text model, and a config whose shapes no longer match the files */
    dir = tmp_model_copy(FIXTURE);
    if (dir) {
        json_t *cfg = read_json(in_dir(dir, "config.json"));
        json_object_set_new(json_object_get(cfg, "text_config"), "model_type",
                            json_string("gemma"));
        write_json(in_dir(dir, "config.json"), cfg);
        EXPECT(dir, PG_ERR_UNSUPPORTED, "\"gemma\"", NULL);
        json_object_set_new(json_object_get(cfg, "text_config"), "model_type",
                            json_string("gemma2"));
        json_object_set_new(json_object_get(cfg, "vision_config"), "image_size",
                            json_integer(57));
        write_json(in_dir(dir, "config.json"), cfg);
        EXPECT(dir, PG_ERR_FORMAT, "multiple of patch_size", NULL);
        json_object_set_new(json_object_get(cfg, "vision_config"), "image_size",
                            json_integer(70)); /* 25 positions, the file has 16 */
        write_json(in_dir(dir, "config.json"), cfg);
        EXPECT(dir, PG_ERR_FORMAT, "position_embedding", "[25, 48]");
        json_decref(cfg);
        tmp_model_remove(dir);
    }
}

static void test_index(void)
{
    char *dir = tmp_model_copy(FIXTURE);
    if (!dir) {
        return;
    }
    /* index pointing at a shard that is not there */
    index_set(dir, NORM, "model-00003-of-00003.safetensors");
    EXPECT(dir, PG_ERR_NOT_FOUND, "model-00003-of-00003.safetensors", INDEX);
    /* a shard name that escapes the folder */
    index_set(dir, NORM, "../model-00002-of-00002.safetensors");
    EXPECT(dir, PG_ERR_FORMAT, NORM, INDEX);
    /* a tensor listed under the wrong shard */
    index_set(dir, NORM, S1);
    EXPECT(dir, PG_ERR_FORMAT, NORM, S2);
    /* stored but not listed */
    index_set(dir, NORM, NULL);
    EXPECT(dir, PG_ERR_FORMAT, NORM, "not listed");
    /* listed but not stored */
    index_set(dir, NORM, S2);
    index_set(dir, "language_model.model.extra.weight", S2);
    EXPECT(dir, PG_ERR_NOT_FOUND, "language_model.model.extra.weight", S2);
    /* not JSON, no weight_map */
    CHECK(write_bytes(in_dir(dir, INDEX), "{\"weight_map\": ", 15) == 0);
    EXPECT(dir, PG_ERR_FORMAT, INDEX, "JSON");
    CHECK(write_bytes(in_dir(dir, INDEX), "{\"metadata\": {}}", 16) == 0);
    EXPECT(dir, PG_ERR_FORMAT, INDEX, "weight_map");
    /* no weights at all */
    unlink(in_dir(dir, INDEX));
    EXPECT(dir, PG_ERR_NOT_FOUND, "model.safetensors", dir);
    tmp_model_remove(dir);
}

/* Runs one shard edit on a fresh copy and expects the load to fail. */
static void shard_case(void (*fn)(st_image *, void *), const char *arg, const char *index_add,
                       pg_status want, const char *n1, const char *n2, int line)
{
    char *dir = tmp_model_copy(FIXTURE);
    if (!dir) {
        return;
    }
    CHECK_MSG(st_edit(in_dir(dir, S2), fn, (void *)(uintptr_t)arg) == 0, "line %d: edit failed", line);
    if (index_add) {
        index_set(dir, index_add, S2);
    }
    pg_model_free(try_load(dir, want, n1, n2, line));
    tmp_model_remove(dir);
}
#define SHARD_CASE(fn, arg, add, want, n1, n2) \
    shard_case((fn), (arg), (add), (want), (n1), (n2), __LINE__)

static void test_shards(void)
{
    SHARD_CASE(drop_tensor, NORM, NULL, PG_ERR_NOT_FOUND, NORM, "missing");
    SHARD_CASE(add_tensor, "language_model.model.extra.weight", "language_model.model.extra.weight",
               PG_ERR_FORMAT, "language_model.model.extra.weight", S2);
    SHARD_CASE(swap_shape, NULL, NULL, PG_ERR_FORMAT, QPROJ2, "[96, 64]");
    SHARD_CASE(set_dtype, "F33", NULL, PG_ERR_FORMAT, NORM, "F33");
    SHARD_CASE(set_dtype, "I32", NULL, PG_ERR_UNSUPPORTED, NORM, "I32");
    SHARD_CASE(set_dtype, "BF16", NULL, PG_ERR_FORMAT, NORM, S2); /* dtype x shape mismatch */
    SHARD_CASE(offsets_out_of_range, NULL, NULL, PG_ERR_FORMAT, NORM, S2);
    SHARD_CASE(offsets_overlap, NULL, NULL, PG_ERR_FORMAT, NORM, "overlap");
    SHARD_CASE(offsets_wrong_size, NULL, NULL, PG_ERR_FORMAT, NORM, S2);
    /* the same tensor in both shards (shard 1 holds the projector bias) */
    SHARD_CASE(add_tensor, "multi_modal_projector.linear.bias", NULL, PG_ERR_FORMAT,
               "multi_modal_projector.linear.bias", S2);
    /* the same tensor in both spellings, both listed in the index */
    SHARD_CASE(add_tensor, "model.multi_modal_projector.linear.bias",
               "model.multi_modal_projector.linear.bias", PG_ERR_FORMAT,
               "multi_modal_projector.linear.bias", "twice");
}

/* Raw damage to a shard file: truncation, bad header length, garbage header. */
static void test_raw_files(void)
{
    char *dir = tmp_model_copy(FIXTURE);
    if (!dir) {
        return;
    }
    const char *s2 = in_dir(dir, S2);
    struct stat sb;
    stat(s2, &sb);
    CHECK(truncate(s2, sb.st_size / 2) == 0);
    EXPECT(dir, PG_ERR_FORMAT, S2, "outside the data buffer");
    CHECK(truncate(s2, 5) == 0);
    EXPECT(dir, PG_ERR_FORMAT, S2, "too short");
    uint8_t big_len[16] = { 0, 0, 0, 0, 1, 0, 0, 0, '{', '}' };
    CHECK(write_bytes(s2, big_len, sizeof big_len) == 0);
    EXPECT(dir, PG_ERR_FORMAT, S2, "larger than the file");
    uint8_t garbage[24] = { 16, 0, 0, 0, 0, 0, 0, 0, 'P', 'K', 3, 4, 0xff, 0xfe, 1, 2 };
    CHECK(write_bytes(s2, garbage, sizeof garbage) == 0);
    EXPECT(dir, PG_ERR_FORMAT, S2, "not valid JSON");
    /* an absurd header length inside a (sparse) file big enough to hold it */
    uint64_t n = PG__ST_MAX_HEADER + 8;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) {
        len8[i] = (uint8_t)(n >> (8 * i));
    }
    CHECK(write_bytes(s2, len8, 8) == 0);
    CHECK(truncate(s2, (off_t)(n + 64)) == 0);
    EXPECT(dir, PG_ERR_LIMIT, S2, "exceeds the limit");
    /* unreadable (permissions do not stop root) */
    CHECK(write_bytes(s2, garbage, sizeof garbage) == 0);
    if (geteuid() != 0) {
        chmod(s2, 0);
        EXPECT(dir, PG_ERR_IO, S2, "cannot open");
        chmod(s2, 0644);
    }
    tmp_model_remove(dir);
}

/* A tokenizer file that does not load makes the model load fail. */
static void test_bad_tokenizer(void)
{
    char *dir = tmp_model_copy(FIXTURE);
    if (!dir) {
        return;
    }
    CHECK(write_bytes(in_dir(dir, "tokenizer.model"), "garbage", 7) == 0);
    pg_model_options o;
    PG_MODEL_OPTIONS_INIT(&o);
    o.backend = "ref";
    pg_model *m = NULL;
    pg_status st = pg_model_load(&m, dir, &o);
    CHECK_MSG(st != PG_OK && m == NULL, "broken tokenizer.model accepted");
    pg_model_free(m);
    tmp_model_remove(dir);
}

static int cancel_at_half(void *user, float f)
{
    float *last = user;
    CHECK_MSG(f >= *last && f <= 1.0f, "progress %g after %g", f, *last);
    *last = f;
    return f >= 0.5f;
}

static int count_calls(void *user, float f)
{
    float *last = user;
    CHECK(f >= *last && f <= 1.0f);
    *last = f;
    return 0;
}

static void test_progress(void)
{
    char *dir = tmp_model_copy(FIXTURE);
    if (!dir) {
        return;
    }
    pg_model_options o;
    PG_MODEL_OPTIONS_INIT(&o);
    o.backend = "ref";
    float last = 0.0f;
    o.progress_fn = cancel_at_half;
    o.progress_user = &last;
    pg_model *m = NULL;
    CHECK_EQ_INT(pg_model_load(&m, dir, &o), PG_ERR_CANCELLED);
    CHECK(m == NULL);
    last = 0.0f;
    o.progress_fn = count_calls;
    CHECK_OK(pg_model_load(&m, dir, &o));
    CHECK(last == 1.0f);
    pg_model_free(m);
    tmp_model_remove(dir);
}

/* ---- unusual but valid folders ---- */

static const char *new_spelling(const char *old)
{
    static char buf[256];
    static const char *const map[][2] = {
        { "language_model.model.", "model.language_model." },
        { "vision_tower.", "model.vision_tower." },
        { "multi_modal_projector.", "model.multi_modal_projector." },
    };
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(map[i][0]);
        if (strncmp(old, map[i][0], n) == 0) {
            snprintf(buf, sizeof buf, "%s%s", map[i][1], old + n);
            return buf;
        }
    }
    return old;
}

static void rename_all(st_image *im, void *unused)
{
    (void)unused;
    json_t *h = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(im->header, k, v) {
        json_object_set(h, new_spelling(k), v);
    }
    json_decref(im->header);
    im->header = h;
}

static void test_new_spelling(void)
{
    char *dir = tmp_model_copy(FIXTURE);
    if (!dir) {
        return;
    }
    CHECK(st_edit(in_dir(dir, S1), rename_all, NULL) == 0);
    CHECK(st_edit(in_dir(dir, S2), rename_all, NULL) == 0);
    json_t *j = read_json(in_dir(dir, INDEX));
    json_t *map = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(j, "weight_map"), k, v) {
        json_object_set(map, new_spelling(k), v);
    }
    json_object_set_new(j, "weight_map", map);
    write_json(in_dir(dir, INDEX), j);
    json_decref(j);
    pg_model *m = try_load(dir, PG_OK, NULL, NULL, __LINE__);
    if (m) {
        CHECK(strcmp(m->decoder.final_norm.name, "model.language_model.norm.weight") == 0);
        CHECK_EQ_INT(m->decoder.layers[2].q_w.rows, 64);
    }
    pg_model_free(m);
    tmp_model_remove(dir);
}

/* Shard 2's tensors moved into shard 1's image (with their data). */
static void merge_into(st_image *dst, const st_image *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src->header, k, v) {
        if (strcmp(k, "__metadata__") == 0) {
            continue;
        }
        uint64_t b = offset(v, 0), e = offset(v, 1);
        size_t off = st_append(dst, src->data + b, (size_t)(e - b));
        json_t *c = json_deep_copy(v);
        set_offsets(c, off, off + (e - b));
        json_object_set_new(dst->header, k, c);
    }
}

/* One model.safetensors with a separate lm_head and the final norm stored as F16; written
 * with a header length that misaligns the data. */
static void test_single_file_variants(void)
{
    for (size_t pad = 0; pad < 2; pad++) {
        char *dir = tmp_model_copy(FIXTURE);
        if (!dir) {
            return;
        }
        st_image a, b;
        CHECK(st_read(&a, in_dir(dir, S1)) == 0 && st_read(&b, in_dir(dir, S2)) == 0);
        merge_into(&a, &b);
        /* lm_head: a copy of the embedding, stored under the new name */
        json_t *emb = json_object_get(a.header, "language_model.model.embed_tokens.weight");
        uint64_t eb = offset(emb, 0), ee = offset(emb, 1);
        uint8_t *copy = malloc(ee - eb);
        memcpy(copy, a.data + eb, ee - eb);
        size_t off = st_append(&a, copy, ee - eb);
        free(copy);
        json_t *head = json_deep_copy(emb);
        set_offsets(head, off, off + (ee - eb));
        json_object_set_new(a.header, "lm_head.weight", head);
        /* final norm as F16 */
        json_t *norm = json_object_get(a.header, NORM);
        const float *nv = (const float *)(a.data + offset(norm, 0));
        uint16_t h[96];
        for (int i = 0; i < 96; i++) {
            h[i] = pg__f32_to_f16(nv[i]);
        }
        off = st_append(&a, h, sizeof h);
        json_object_set_new(norm, "dtype", json_string("F16"));
        set_offsets(norm, off, off + sizeof h);
        CHECK(st_write(&a, in_dir(dir, "model.safetensors"), pad ? 1 : 0) == 0);
        unlink(in_dir(dir, S1));
        unlink(in_dir(dir, S2));
        unlink(in_dir(dir, INDEX));
        pg_model *m = try_load(dir, PG_OK, NULL, NULL, __LINE__);
        if (m) {
            CHECK_EQ_INT(m->n_files, 1);
            const pg__decoder_weights *d = &m->decoder;
            CHECK(d->lm_head.data != d->embed.data);
            CHECK(strcmp(d->lm_head.name, "lm_head.weight") == 0);
            CHECK(memcmp(d->lm_head.data, d->embed.data, (size_t)(ee - eb)) == 0);
            CHECK(d->final_norm.dtype == PG__F16);
            const uint16_t *fh = d->final_norm.data;
            CHECK(memcmp(fh, h, sizeof h) == 0);
            CHECK_EQ_INT((uintptr_t)d->embed.data % 4, 0); /* aligned, copied if need be */
            CHECK_EQ_INT((uintptr_t)fh % 2, 0);
            CHECK(pad ? m->owned != NULL : m->owned == NULL);
            pg_model_info info = { .struct_size = sizeof info };
            pg_model_get_info(m, &info);
            CHECK_EQ_INT(info.weight_dtype, PG_DTYPE_F32);
            CHECK(pg_model_tokenizer(m) == NULL); /* no tokenizer files: allowed */
        }
        pg_model_free(m);
        st_free(&a);
        st_free(&b);
        tmp_model_remove(dir);
    }
}

int main(void)
{
    test_folder_and_args();
    test_config();
    test_index();
    test_shards();
    test_raw_files();
    test_bad_tokenizer();
    test_progress();
    test_new_spelling();
    test_single_file_variants();
    return pg_test_finish();
}
