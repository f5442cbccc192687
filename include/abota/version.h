/* version.h - comparing bundle versions for the install version policy, and
 * the persisted version floor (anti-rollback). */
#ifndef ABOTA_VERSION_H
#define ABOTA_VERSION_H

#include <stdbool.h>

#include "abota/error.h"

/* Longer version strings are not versions (they are refused, not compared). */
#define VERSION_MAX_LEN 128

/* Compares two versions the way RAUC's min-bundle-version does (SemVer core
 * MAJOR.MINOR.PATCH with an optional -pre-release, which sorts before the
 * release), extended to up to 8 dot-separated numeric fields (so
 * "2026.11.1" and "1.2" compare sensibly).  Pre-release and build metadata
 * may hold only [0-9A-Za-z.-] (SemVer).  Returns false if either string is
 * not such a version (or longer than VERSION_MAX_LEN); otherwise *cmp is
 * <0, 0 or >0. */
bool version_compare(const char *a, const char *b, int *cmp);

/* The version floor: the highest bundle version this device has accepted
 * (mark-good of the booted slot), kept in <data-directory>/version-floor
 * (one line).  Install refuses bundles older than it unless the version
 * limit is ignored.  It survives reboots, power cuts and a lost or replaced
 * slot status file, and it only ever rises.  VERSION_FLOOR_FILE is the name
 * inside the data directory. */
#define VERSION_FLOOR_FILE "version-floor"

/* Reads the floor from path into *floor (malloc'd; NULL when the file does
 * not exist).  A file that does not hold exactly one comparable version is
 * an error naming the file. */
int version_floor_load(const char *path, char **floor, struct abota_error *err);

/* Raises the floor in path to `version` when it is higher than the stored
 * one (or none is stored), durably (temp file, fsync, rename, fsync of the
 * directory).  *raised (may be NULL) tells whether the file changed.  A
 * version that cannot be compared is an error. */
int version_floor_raise(const char *path, const char *version, bool *raised,
			struct abota_error *err);

#endif
