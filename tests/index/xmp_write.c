/*
 * Writes a known sidecar through the indexer's XMP writer (lib/index/xmp.c) for
 * xmp_exiftool.py, which reads it back with exiftool: `xmp_write IMAGE 1` writes a caption,
 * two keywords and two regions; `xmp_write IMAGE 2` then writes a new caption, one keyword
 * and one region (our earlier regions must go, everything else stay).
 */
#include "index/index.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: xmp_write IMAGE 1|2\n");
        return 2;
    }
    pg_status st;
    if (!strcmp(argv[2], "1")) {
        const char *subjects[] = { "dog", "person" };
        const pg__xmp_region regions[] = { { "dog", 0.1f, 0.2f, 0.3f, 0.4f },
                                           { "person", 0.5f, 0.25f, 0.25f, 0.5f } };
        st = pg__xmp_write(argv[1], "a dog on a beach <with> \"quotes\" & caf\xc3\xa9",
                           subjects, 2, regions, 2);
    } else {
        const char *subjects[] = { "dog" };
        const pg__xmp_region regions[] = { { "dog", 0.125f, 0.25f, 0.5f, 0.625f } };
        st = pg__xmp_write(argv[1], "a dog", subjects, 1, regions, 1);
    }
    if (st != PG_OK) {
        fprintf(stderr, "xmp_write: %s\n", pg_last_error());
        return 1;
    }
    return 0;
}
