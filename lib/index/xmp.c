/*
 * NAME.EXT.xmp sidecars (the digiKam / darktable naming) through exempi, Adobe's XMP toolkit
 * (no hand-written RDF). What we own, and replace on every write:
 *   dc:description[x-default]        the caption (C0 control characters, which XML cannot
 *                                    hold, as spaces)
 *   dc:subject                       detected labels are added (existing keywords are kept)
 *   Iptc4xmpExt:ImageRegion items    whose Iptc4xmpExt:rId starts with "paligemma-": one per
 *                                    box, a relative rectangle with the label as its Name
 * Everything else an existing sidecar holds (ratings, other regions, history, ...) is kept as
 * parsed. The file is replaced atomically (written beside it, then renamed).
 */
#include "index/index.h"

#include "core/core.h"

#include <exempi/xmp.h>
#include <exempi/xmpconsts.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NS_IPTCEXT "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
#define ID_PREFIX "paligemma-"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static bool g_ok;

/* exempi's toolkit is process-wide; initialised once and kept (it owns static tables). */
static void init_once(void)
{
    g_ok = xmp_init();
    if (g_ok) {
        XmpStringPtr prefix = xmp_string_new();
        xmp_register_namespace(NS_IPTCEXT, "Iptc4xmpExt", prefix);
        xmp_string_free(prefix);
    }
}

static bool has_subject(XmpPtr x, const char *label, XmpStringPtr tmp)
{
    for (int32_t i = 1;; i++) {
        uint32_t bits = 0;
        if (!xmp_get_array_item(x, NS_DC, "subject", i, tmp, &bits)) {
            return false;
        }
        if (!strcmp(xmp_string_cstr(tmp), label)) {
            return true;
        }
    }
}

/* Deletes our regions of an earlier run (from the last, so indices stay valid). */
static void drop_our_regions(XmpPtr x, XmpStringPtr tmp)
{
    int32_t n = 0;
    char path[96];
    for (;;) {
        snprintf(path, sizeof path, "ImageRegion[%d]", (int)(n + 1));
        if (!xmp_has_property(x, NS_IPTCEXT, path)) {
            break;
        }
        n++;
    }
    for (int32_t i = n; i >= 1; i--) {
        snprintf(path, sizeof path, "ImageRegion[%d]/Iptc4xmpExt:rId", (int)i);
        uint32_t bits = 0;
        if (xmp_get_property(x, NS_IPTCEXT, path, tmp, &bits) &&
            !strncmp(xmp_string_cstr(tmp), ID_PREFIX, strlen(ID_PREFIX))) {
            snprintf(path, sizeof path, "ImageRegion[%d]", (int)i);
            xmp_delete_property(x, NS_IPTCEXT, path);
        }
    }
}

static bool set_field(XmpPtr x, int32_t item, const char *field, const char *value)
{
    char path[128];
    snprintf(path, sizeof path, "ImageRegion[%d]/%s", (int)item, field);
    return xmp_set_property(x, NS_IPTCEXT, path, value, 0);
}

static bool add_region(XmpPtr x, const pg__xmp_region *r, size_t k)
{
    if (!xmp_append_array_item(x, NS_IPTCEXT, "ImageRegion", XMP_PROP_VALUE_IS_ARRAY, NULL,
                               XMP_PROP_VALUE_IS_STRUCT)) {
        return false;
    }
    int32_t item = 1;
    char path[96];
    for (;; item++) {
        snprintf(path, sizeof path, "ImageRegion[%d]", (int)(item + 1));
        if (!xmp_has_property(x, NS_IPTCEXT, path)) {
            break;
        }
    }
    char id[48], v[4][32];
    snprintf(id, sizeof id, ID_PREFIX "%zu", k);
    snprintf(v[0], sizeof v[0], "%.6f", (double)r->nx);
    snprintf(v[1], sizeof v[1], "%.6f", (double)r->ny);
    snprintf(v[2], sizeof v[2], "%.6f", (double)r->nw);
    snprintf(v[3], sizeof v[3], "%.6f", (double)r->nh);
    snprintf(path, sizeof path, "ImageRegion[%d]/Iptc4xmpExt:Name", (int)item);
    return set_field(x, item, "Iptc4xmpExt:rId", id) &&
           set_field(x, item, "Iptc4xmpExt:RegionBoundary/Iptc4xmpExt:rbShape", "rectangle") &&
           set_field(x, item, "Iptc4xmpExt:RegionBoundary/Iptc4xmpExt:rbUnit", "relative") &&
           set_field(x, item, "Iptc4xmpExt:RegionBoundary/Iptc4xmpExt:rbX", v[0]) &&
           set_field(x, item, "Iptc4xmpExt:RegionBoundary/Iptc4xmpExt:rbY", v[1]) &&
           set_field(x, item, "Iptc4xmpExt:RegionBoundary/Iptc4xmpExt:rbW", v[2]) &&
           set_field(x, item, "Iptc4xmpExt:RegionBoundary/Iptc4xmpExt:rbH", v[3]) &&
           (!r->label[0] ||
            xmp_set_localized_text(x, NS_IPTCEXT, path, "", "x-default", r->label, 0));
}

/* XML 1.0 cannot hold C0 control characters other than tab, newline and carriage return:
 * they become spaces (a copy; NULL on no memory). */
static char *xml_safe(const char *s)
{
    char *t = pg__strdup(s);
    for (char *c = t; c && *c; c++) {
        if ((unsigned char)*c < 0x20 && *c != '\t' && *c != '\n' && *c != '\r') {
            *c = ' ';
        }
    }
    return t;
}

static pg_status fill(XmpPtr x, const char *description, const char *const *subjects,
                      size_t n_subjects, const pg__xmp_region *regions, size_t n_regions)
{
    XmpStringPtr tmp = xmp_string_new();
    bool ok = tmp != NULL;
    if (ok && description) {
        char *safe = xml_safe(description);
        ok = safe && xmp_set_localized_text(x, NS_DC, "description", "", "x-default", safe, 0);
        free(safe);
    }
    for (size_t i = 0; ok && i < n_subjects; i++) {
        if (!has_subject(x, subjects[i], tmp)) {
            ok = xmp_append_array_item(x, NS_DC, "subject", XMP_PROP_VALUE_IS_ARRAY,
                                       subjects[i], 0);
        }
    }
    if (ok) {
        drop_our_regions(x, tmp);
    }
    for (size_t i = 0; ok && i < n_regions; i++) {
        ok = add_region(x, &regions[i], i);
    }
    xmp_string_free(tmp);
    return ok ? PG_OK : pg__error(PG_ERR_INTERNAL, "exempi refused a property (error %d)",
                                  xmp_get_error());
}

static pg_status save(const char *side, XmpPtr x)
{
    XmpStringPtr out = xmp_string_new();
    if (!out || !xmp_serialize(x, out, XMP_SERIAL_OMITPACKETWRAPPER, 0)) {
        xmp_string_free(out);
        return pg__error(PG_ERR_INTERNAL, "%s: exempi cannot serialize (error %d)", side,
                         xmp_get_error());
    }
    const char *text = xmp_string_cstr(out);
    char *tmp = pg__malloc(strlen(side) + 16);
    pg_status st = tmp ? PG_OK : pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    FILE *f = NULL;
    if (st == PG_OK) {
        sprintf(tmp, "%s.tmp%ld", side, (long)getpid());
        if (!(f = fopen(tmp, "wb"))) {
            st = pg__error(PG_ERR_IO, "%s: cannot write the sidecar: %s", side, strerror(errno));
        }
    }
    if (f) {
        bool ok = fwrite(text, 1, strlen(text), f) == strlen(text);
        ok = (fclose(f) == 0) && ok;
        if (!ok || rename(tmp, side) != 0) {
            st = pg__error(PG_ERR_IO, "%s: cannot write the sidecar: %s", side, strerror(errno));
            unlink(tmp);
        }
    }
    free(tmp);
    xmp_string_free(out);
    return st;
}

pg_status pg__xmp_write(const char *image_path, const char *description,
                        const char *const *subjects, size_t n_subjects,
                        const pg__xmp_region *regions, size_t n_regions)
{
    pthread_once(&g_once, init_once);
    if (!g_ok) {
        return pg__error(PG_ERR_INTERNAL, "exempi failed to initialise");
    }
    char *side = pg__malloc(strlen(image_path) + 5);
    if (!side) {
        return pg__error(PG_ERR_OUT_OF_MEMORY, "no memory");
    }
    sprintf(side, "%s.xmp", image_path);
    char *old = NULL;
    size_t old_size = 0;
    pg_status st = access(side, F_OK) == 0 ? pg__read_file(side, 64u << 20, &old, &old_size)
                                           : PG_OK;
    XmpPtr x = NULL;
    if (st == PG_OK) {
        x = old ? xmp_new(old, old_size) : xmp_new_empty();
        if (!x) {
            st = pg__error(PG_ERR_FORMAT, "%s: not an XMP packet exempi can read (error %d); "
                           "left as it is", side, xmp_get_error());
        }
    }
    if (st == PG_OK) {
        st = fill(x, description, subjects, n_subjects, regions, n_regions);
    }
    if (st == PG_OK) {
        st = save(side, x);
    }
    if (x) {
        xmp_free(x);
    }
    free(old);
    free(side);
    return st;
}
