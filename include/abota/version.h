/* version.h - comparing bundle versions for the install version policy. */
#ifndef ABOTA_VERSION_H
#define ABOTA_VERSION_H

#include <stdbool.h>

/* Compares two versions the way RAUC's min-bundle-version does (SemVer core
 * MAJOR.MINOR.PATCH with an optional -pre-release, which sorts before the
 * release), extended to any number of dot-separated numeric fields (so
 * "2026.11.1" and "1.2" compare sensibly).  Returns false if either string
 * is not such a version; otherwise *cmp is <0, 0 or >0. */
bool version_compare(const char *a, const char *b, int *cmp);

#endif
