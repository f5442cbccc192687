/* cmd_fwu.c - abota fwu dump | create | set-active | accept | reject | repair.
 *
 * Replaces mkfwumdata (create), ST's update_metadata.sh (create/set-active/
 * accept) and fwumd_tool.py (dump --output-format=json, v1 edits).  The
 * metadata lives in one or two files / partitions given as arguments
 * (primary first), or in the metadata1/metadata2 partitions of a GPT disk
 * (--disk).  Every write goes through the two-copy store: validated first,
 * secondary then primary, each synced before the other is touched. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "abota/board.h"
#include "abota/fwu_store.h"
#include "abota/log.h"
#include "abota/powercut.h"
#include "cli.h"

enum {
	OPT_DISK = 1000,
	OPT_BOARD,
	OPT_FORMAT,
	OPT_MD_VERSION,
	OPT_BANKS,
	OPT_IMAGES,
	OPT_IMAGE_TYPE,
	OPT_BANK,
	OPT_ACCEPTED,
	OPT_PREVIOUS,
	OPT_HELP,
};

struct fwu_opts {
	const char *sub;
	const char *disk;
	const char *board;
	enum cli_output_format fmt;
	struct fwu_md_config cfg;
	bool version_set, banks_set, images_set;
	const char *bank; /* --bank / set-active BANK */
	bool accepted;
	long previous; /* -1 = default */
	long active;
	const char *states;
	const char *files[2];
	unsigned nfiles;
	const char *lists[FWU_MD_MAX_IMAGES];
	unsigned nlists;
	struct board *bp;
};

static const char usage_text[] =
	"Usage: abota fwu SUBCOMMAND [OPTIONS] [FILE [FILE2]]\n"
	"\n"
	"FWU metadata in one or two files / partitions (FILE = primary, FILE2 =\n"
	"secondary) or in the metadata1/metadata2 partitions of a GPT disk.\n"
	"\n"
	"Subcommands:\n"
	"  dump                       show both copies, which one is in effect and what\n"
	"                             each firmware would read\n"
	"  create [LIST...]           write new metadata (mkfwumdata); LIST per image:\n"
	"                             location,image_type,bank0_guid,bank1_guid[,...]\n"
	"                             (default: ST's FIP GUIDs, or the board's)\n"
	"  set-active BANK            activate BANK for a trial boot (VALID, not accepted,\n"
	"                             previous = old active); --accepted: ACCEPTED directly\n"
	"  accept [--bank=BANK]       accept BANK (default: active): ACCEPTED, active,\n"
	"                             previous = the other bank, whose state is kept\n"
	"  reject [--bank=BANK]       reject BANK (default: active): INVALID, active =\n"
	"                             previous, previous = BANK\n"
	"  repair                     rewrite a bad or stale copy from the one in effect\n"
	"\n"
	"Options:\n"
	"      --disk=IMAGE           GPT disk or disk image holding metadata1/metadata2\n"
	"      --board=NAME|FILE      board profile: metadata shape, image types, GUIDs\n"
	"  -v, --md-version=1|2       metadata version (default: board, else 2; dump:\n"
	"                             from the data)\n"
	"  -b, --banks=N              number of banks (default 2)\n"
	"  -i, --images=N             images per bank (default 1)\n"
	"      --image-type=GUID      an image type GUID firmware knows (repeatable;\n"
	"                             default: ST's FIP type)\n"
	"  -a, --active=N             create: active bank (default 0)\n"
	"  -p, --previous=N           create/set-active: previous bank\n"
	"  -s, --states=S0,S1,...     create: bank states A|V|I (default all A)\n"
	"  -g                         accepted for mkfwumdata compatibility (GUIDs are\n"
	"                             always written in EFI byte order)\n"
	"      --bank=BANK            accept/reject: bank (A, B, ... or 0, 1, ...)\n"
	"      --accepted             set-active: make the bank ACCEPTED at once\n"
	"      --output-format=FMT    readable (default), json, json-pretty\n"
	"  -h, --help                 this help\n"
	"\n"
	"Exit status: 0 ok, 1 failure (dump: no valid copy), 2 usage, 137 simulated\n"
	"power cut (ABOTA_POWERCUT, see docs/fwu.md).\n";

static int fail(struct fwu_opts *o, const struct abota_error *err)
{
	char verb[64];
	snprintf(verb, sizeof(verb), "fwu %s", o->sub);
	cli_fail(verb, err);
	return err->code == -ECANCELED && powercut_happened() ? POWERCUT_EXIT_STATUS : 1;
}

static int parse_index(const char *s, unsigned max, unsigned *out)
{
	if (s[0] && !s[1] && s[0] >= 'A' && s[0] < 'A' + (int)max) {
		*out = (unsigned)(s[0] - 'A');
		return 0;
	}
	if (s[0] && !s[1] && s[0] >= 'a' && s[0] < 'a' + (int)max) {
		*out = (unsigned)(s[0] - 'a');
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v >= max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_num(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > max || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_opts(struct cli_globals *g, struct fwu_opts *o, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "board", required_argument, NULL, OPT_BOARD },
		{ "output-format", required_argument, NULL, OPT_FORMAT },
		{ "md-version", required_argument, NULL, 'v' },
		{ "banks", required_argument, NULL, 'b' },
		{ "images", required_argument, NULL, 'i' },
		{ "image-type", required_argument, NULL, OPT_IMAGE_TYPE },
		{ "active", required_argument, NULL, 'a' },
		{ "previous", required_argument, NULL, 'p' },
		{ "states", required_argument, NULL, 's' },
		{ "bank", required_argument, NULL, OPT_BANK },
		{ "accepted", no_argument, NULL, OPT_ACCEPTED },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char verb[64];
	snprintf(verb, sizeof(verb), "fwu %s", o->sub);
	struct guid types[FWU_MD_MAX_IMAGES];
	unsigned ntypes = 0;
	unsigned long v;
	int c;
	optind = 0;
	while ((c = cli_getopt(g, verb, argc, argv, "v:b:i:a:p:s:gh", opts)) != -1) {
		switch (c) {
		case OPT_DISK: o->disk = optarg; break;
		case OPT_BOARD: o->board = optarg; break;
		case OPT_FORMAT:
			if (!cli_parse_output_format(optarg, &o->fmt) || o->fmt == CLI_OUTPUT_SHELL)
				return cli_usage_error(verb, "unknown output format '%s'", optarg);
			break;
		case 'v':
			if (parse_num(optarg, 2, &v) < 0 || v < 1)
				return cli_usage_error(verb, "--md-version must be 1 or 2");
			o->cfg.version = (uint32_t)v;
			o->version_set = true;
			break;
		case 'b':
			if (parse_num(optarg, FWU_MD_MAX_BANKS, &v) < 0 || v < 1)
				return cli_usage_error(verb, "--banks must be 1..%d", FWU_MD_MAX_BANKS);
			o->cfg.num_banks = (uint8_t)v;
			o->banks_set = true;
			break;
		case 'i':
			if (parse_num(optarg, FWU_MD_MAX_IMAGES, &v) < 0 || v < 1)
				return cli_usage_error(verb, "--images must be 1..%d",
						       FWU_MD_MAX_IMAGES);
			o->cfg.num_images = (uint16_t)v;
			o->images_set = true;
			break;
		case OPT_IMAGE_TYPE:
			if (ntypes == FWU_MD_MAX_IMAGES)
				return cli_usage_error(verb, "too many --image-type options");
			if (guid_parse(optarg, &types[ntypes], NULL) < 0)
				return cli_usage_error(verb, "invalid GUID '%s'", optarg);
			ntypes++;
			break;
		case 'a':
			if (parse_num(optarg, FWU_MD_MAX_BANKS - 1, &v) < 0)
				return cli_usage_error(verb, "invalid --active '%s'", optarg);
			o->active = (long)v;
			break;
		case 'p':
			if (parse_num(optarg, FWU_MD_MAX_BANKS - 1, &v) < 0)
				return cli_usage_error(verb, "invalid --previous '%s'", optarg);
			o->previous = (long)v;
			break;
		case 's': o->states = optarg; break;
		case 'g': break;
		case OPT_BANK: o->bank = optarg; break;
		case OPT_ACCEPTED: o->accepted = true; break;
		case 'h':
			fputs(usage_text, stdout);
			return -1;
		case CLI_GETOPT_REPORTED: return 2;
		default:
			return cli_usage_error(verb, "invalid option");
		}
	}
	/* Board defaults, then explicit options on top. */
	struct abota_error err = { 0 };
	if (o->board) {
		if (board_load(o->board, &o->bp, &err) < 0)
			return fail(o, &err), 1;
		struct fwu_md_config bc = board_fwu_config(o->bp);
		if (!o->version_set)
			o->cfg.version = bc.version;
		if (!o->banks_set)
			o->cfg.num_banks = bc.num_banks;
		if (!o->images_set)
			o->cfg.num_images = bc.num_images;
		if (!ntypes) {
			o->cfg.num_image_types = bc.num_image_types;
			memcpy(o->cfg.image_types, bc.image_types, sizeof(bc.image_types));
		}
	}
	if (!o->cfg.num_banks)
		o->cfg.num_banks = 2;
	if (!o->cfg.num_images)
		o->cfg.num_images = 1;
	if (ntypes) {
		o->cfg.num_image_types = (uint16_t)ntypes;
		memcpy(o->cfg.image_types, types, sizeof(types));
	} else if (!o->bp) {
		o->cfg.num_image_types = 1;
		o->cfg.image_types[0] = GUID_ST_FIP_TYPE;
	}
	for (int i = optind; i < argc; i++) {
		const char *a = argv[i];
		bool is_list = strchr(a, ',') != NULL;
		if (strcmp(o->sub, "set-active") == 0 && !o->bank) {
			o->bank = a;
		} else if (is_list && strcmp(o->sub, "create") == 0) {
			if (o->nlists == FWU_MD_MAX_IMAGES)
				return cli_usage_error(verb, "too many UUID lists");
			o->lists[o->nlists++] = a;
		} else {
			if (o->nfiles == 2)
				return cli_usage_error(verb, "at most two metadata files");
			o->files[o->nfiles++] = a;
		}
	}
	if (o->disk && o->nfiles)
		return cli_usage_error(verb, "give either --disk or metadata files, not both");
	if (!o->disk && !o->nfiles)
		return cli_usage_error(verb, "no metadata given (FILE [FILE2] or --disk=IMAGE)");
	return 0;
}

static int open_store(struct fwu_opts *o, bool create, struct fwu_store **st)
{
	struct abota_error err = { 0 };
	int ret = o->disk ? fwu_store_open_disk(o->disk, &o->cfg, st, &err)
			  : fwu_store_open_files(o->files, o->nfiles, &o->cfg, create, st, &err);
	if (ret < 0)
		return fail(o, &err);
	return 0;
}

/* --- dump --------------------------------------------------------------- */

static void fw_list(const struct fwu_md_config *cfg, uint32_t version, enum fwu_fw *fws,
		    unsigned *n)
{
	*n = 0;
	if (version == 1) {
		fws[(*n)++] = FWU_FW_TFA_V1;
	} else {
		fws[(*n)++] = FWU_FW_TFA_ST_R3;
		fws[(*n)++] = FWU_FW_TFA_UPSTREAM;
	}
	fws[(*n)++] = FWU_FW_UBOOT;
	(void)cfg;
}

static struct fwu_md_config copy_config(const struct fwu_opts *o,
					const struct fwu_store_copy_state *cs)
{
	struct fwu_md_config cfg = o->cfg;
	if (!cfg.version)
		cfg.version = cs->decoded && cs->md.version == 1 ? 1 : 2;
	return cfg;
}

static int cmd_dump(struct fwu_opts *o)
{
	struct fwu_store *st = NULL;
	struct fwu_store_state *s = malloc(sizeof(*s));
	struct abota_error err = { 0 };
	int rc = 1;
	if (!s) {
		fputs("abota fwu dump: out of memory\n", stderr);
		return 1;
	}
	if (open_store(o, false, &st)) {
		free(s);
		return 1;
	}
	if (fwu_store_read(st, s, &err) < 0) {
		rc = fail(o, &err);
		goto out;
	}
	if (o->fmt == CLI_OUTPUT_READABLE) {
		for (unsigned i = 0; i < s->ncopies; i++) {
			const struct fwu_store_copy_state *cs = &s->copy[i];
			printf("%-10s %s", fwu_store_copy_name(st, i), cs->valid ? "valid" : "INVALID");
			if (!cs->valid)
				printf(": %s", cs->error);
			else if (s->winner >= 0 && (int)i != s->winner)
				printf(s->needs_repair ? " (differs from the copy in effect)"
						       : " (identical)");
			printf("\n");
		}
		if (s->winner < 0)
			printf("in effect: none - no valid copy (TF-A BL2 would panic)\n");
		else
			printf("in effect: %s%s\n", fwu_store_copy_name(st, (unsigned)s->winner),
			       s->needs_repair ? " (repair needed: abota fwu repair)" : "");
		int show = s->winner;
		for (unsigned i = 0; show < 0 && i < s->ncopies; i++)
			if (s->copy[i].decoded)
				show = (int)i;
		if (show >= 0) {
			const struct fwu_store_copy_state *cs = &s->copy[show];
			printf("\n%s%s:\n", fwu_store_copy_name(st, (unsigned)show),
			       cs->valid ? "" : " (decoded despite errors)");
			char *t = fwu_md_format(&cs->md);
			if (t)
				fputs(t, stdout);
			free(t);
		}
		printf("\nfirmware view:\n");
		for (unsigned i = 0; i < s->ncopies; i++) {
			const struct fwu_store_copy_state *cs = &s->copy[i];
			struct fwu_md_config cfg = copy_config(o, cs);
			enum fwu_fw fws[4];
			unsigned nf;
			fw_list(&cfg, cfg.version, fws, &nf);
			for (unsigned f = 0; f < nf; f++) {
				struct abota_error e = { 0 };
				int r = fwu_md_fw_check(fws[f], cs->raw, cs->raw_len, &cfg, NULL, &e);
				printf("  %-10s %-14s %s\n", fwu_store_copy_name(st, i),
				       fwu_fw_name(fws[f]), r == 0 ? "ok" : e.msg);
			}
		}
		if (fwu_store_gpt(st) && s->winner >= 0) {
			struct abota_error e = { 0 };
			if (fwu_store_check_guids(fwu_store_gpt(st), &s->copy[s->winner].md, &e) < 0)
				printf("\nWARNING: %s\n", e.msg);
		}
	} else {
		struct json_object *root = json_object_new_object();
		struct json_object *copies = json_object_new_array();
		for (unsigned i = 0; i < s->ncopies; i++) {
			const struct fwu_store_copy_state *cs = &s->copy[i];
			struct json_object *c = json_object_new_object();
			json_object_object_add(c, "name",
					       json_object_new_string(fwu_store_copy_name(st, i)));
			json_object_object_add(c, "valid", json_object_new_boolean(cs->valid));
			json_object_object_add(c, "error", cs->valid ? NULL
							: json_object_new_string(cs->error));
			struct fwu_md_config cfg = copy_config(o, cs);
			enum fwu_fw fws[4];
			unsigned nf;
			fw_list(&cfg, cfg.version, fws, &nf);
			struct json_object *fw = json_object_new_object();
			for (unsigned f = 0; f < nf; f++) {
				struct abota_error e = { 0 };
				int r = fwu_md_fw_check(fws[f], cs->raw, cs->raw_len, &cfg, NULL, &e);
				json_object_object_add(fw, fwu_fw_name(fws[f]),
						       json_object_new_string(r == 0 ? "ok" : e.msg));
			}
			json_object_object_add(c, "firmware", fw);
			json_object_object_add(c, "metadata",
					       cs->decoded ? fwu_md_to_json(&cs->md) : NULL);
			json_object_array_add(copies, c);
		}
		json_object_object_add(root, "copies", copies);
		json_object_object_add(root, "in_effect",
				       s->winner >= 0 ? json_object_new_string(fwu_store_copy_name(
								st, (unsigned)s->winner))
						      : NULL);
		json_object_object_add(root, "needs_repair",
				       json_object_new_boolean(s->needs_repair));
		json_object_object_add(root, "metadata",
				       s->winner >= 0 ? fwu_md_to_json(&s->copy[s->winner].md) : NULL);
		if (fwu_store_gpt(st) && s->winner >= 0) {
			struct abota_error e = { 0 };
			int r = fwu_store_check_guids(fwu_store_gpt(st), &s->copy[s->winner].md, &e);
			json_object_object_add(root, "guid_check",
					       json_object_new_string(r == 0 ? "ok" : e.msg));
		}
		int flags = o->fmt == CLI_OUTPUT_JSON_PRETTY ? JSON_C_TO_STRING_PRETTY
							      : JSON_C_TO_STRING_PLAIN;
		printf("%s\n", json_object_to_json_string_ext(root, flags));
		json_object_put(root);
	}
	rc = s->winner >= 0 ? 0 : 1;
out:
	free(s);
	fwu_store_free(st);
	return rc;
}

/* --- writers ------------------------------------------------------------ */

static void print_result(struct fwu_opts *o, struct fwu_store *st, const struct fwu_metadata *md)
{
	if (o->fmt != CLI_OUTPUT_READABLE) {
		struct json_object *j = fwu_md_to_json(md);
		printf("%s\n", json_object_to_json_string_ext(
				       j, o->fmt == CLI_OUTPUT_JSON_PRETTY ? JSON_C_TO_STRING_PRETTY
									   : JSON_C_TO_STRING_PLAIN));
		json_object_put(j);
		return;
	}
	printf("wrote");
	for (int i = (int)fwu_store_ncopies(st) - 1; i >= 0; i--)
		printf(" %s", fwu_store_copy_name(st, (unsigned)i));
	printf(": active %c (%s), previous %c (%s)\n", 'A' + md->active_index,
	       fwu_bank_state_name(fwu_md_bank_state(md, md->active_index)),
	       'A' + md->previous_active_index,
	       fwu_bank_state_name(fwu_md_bank_state(md, md->previous_active_index)));
}

static int cmd_create(struct fwu_opts *o)
{
	struct abota_error err = { 0 };
	struct fwu_metadata md;
	struct fwu_store *st = NULL;
	int rc = 1;
	if (!o->cfg.version)
		o->cfg.version = 2;
	unsigned nb = o->cfg.num_banks, ni = o->cfg.num_images;
	if (fwu_md_init(&md, o->cfg.version, nb, ni, &err) < 0)
		return fail(o, &err);
	if (o->active >= (long)nb)
		return cli_usage_error("fwu create", "--active %ld out of range (%u banks)",
				       o->active, nb);
	md.active_index = (uint32_t)o->active;
	/* mkfwumdata: previous defaults to active-1, wrapping. */
	md.previous_active_index = o->previous >= 0 ? (uint32_t)o->previous
						    : (md.active_index + nb - 1) % nb;
	if (o->previous >= (long)nb)
		return cli_usage_error("fwu create", "--previous %ld out of range", o->previous);
	if (o->states) {
		char *copy = strdup(o->states), *save = NULL;
		unsigned b = 0;
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save), b++) {
			uint8_t s;
			if (b >= nb || fwu_bank_state_parse(t, &s, &err) < 0) {
				free(copy);
				return cli_usage_error("fwu create",
						       "--states needs %u states A|V|I, got '%s'", nb,
						       o->states);
			}
			if (md.version == 2)
				md.bank_state[b] = s;
			/* v1 has no states: V/I = not accepted (ST fwumd_tool
			 * "refuse"); v2 keeps mkfwumdata's accepted=1. */
			if (md.version == 1 && s != FWU_BANK_ACCEPTED)
				for (unsigned i = 0; i < ni; i++)
					md.img[i].bank[b].accepted = 0;
		}
		free(copy);
		if (b != nb)
			return cli_usage_error("fwu create", "--states needs %u states, got %u", nb,
					       b);
	}
	if (o->nlists) {
		if (o->nlists != ni)
			return cli_usage_error("fwu create", "%u UUID lists for %u images",
					       o->nlists, ni);
		for (unsigned i = 0; i < ni; i++) {
			char *copy = strdup(o->lists[i]), *save = NULL;
			unsigned k = 0;
			bool bad = false;
			for (char *t = strtok_r(copy, ",", &save); t && !bad;
			     t = strtok_r(NULL, ",", &save), k++) {
				struct guid g = { 0 };
				/* too many GUIDs (the last branch) is as bad as a bad GUID */
				if (strcmp(t, "0") != 0 && guid_parse(t, &g, &err) < 0)
					bad = true; /* NOLINT(bugprone-branch-clone) */
				else if (k == 0)
					md.img[i].location_guid = g;
				else if (k == 1)
					md.img[i].type_guid = g;
				else if (k - 2 < nb)
					md.img[i].bank[k - 2].img_guid = g;
				else
					bad = true;
			}
			free(copy);
			if (bad || k != 2 + nb)
				return cli_usage_error("fwu create",
						       "UUID list '%s' must be location,type,%u bank "
						       "GUIDs",
						       o->lists[i], nb);
		}
	} else if (o->bp) {
		if (board_fill_metadata_guids(o->bp, &md, &err) < 0)
			return fail(o, &err);
	} else if (nb == 2 && ni == 1) {
		md.img[0].location_guid = GUID_FWU_METADATA_TYPE;
		md.img[0].type_guid = GUID_ST_FIP_TYPE;
		md.img[0].bank[0].img_guid = GUID_ST_FIP_A_UUID;
		md.img[0].bank[1].img_guid = GUID_ST_FIP_B_UUID;
	} else {
		return cli_usage_error("fwu create",
				       "UUID lists (or --board) needed for %u banks x %u images", nb,
				       ni);
	}
	if (open_store(o, true, &st))
		return 1;
	if (fwu_store_write(st, &md, &err) < 0) {
		rc = fail(o, &err);
		goto out;
	}
	print_result(o, st, &md);
	rc = 0;
out:
	fwu_store_free(st);
	return rc;
}

static int cmd_modify(struct fwu_opts *o)
{
	struct abota_error err = { 0 };
	struct fwu_store *st = NULL;
	struct fwu_metadata md;
	int rc = 1;
	if (open_store(o, false, &st))
		return 1;
	if (!o->cfg.version) {
		/* Take the version from the data; refuse nothing yet. */
		struct fwu_store_state *s = malloc(sizeof(*s));
		if (s && fwu_store_read(st, s, NULL) == 0 && s->winner >= 0)
			o->cfg.version = s->copy[s->winner].md.version;
		free(s);
		fwu_store_free(st);
		st = NULL;
		if (!o->cfg.version)
			o->cfg.version = 2;
		if (open_store(o, false, &st))
			return 1;
	}
	unsigned repaired = 0;
	bool is_repair = strcmp(o->sub, "repair") == 0;
	if (fwu_store_load(st, is_repair, &md, &repaired, &err) < 0) {
		rc = fail(o, &err);
		goto out;
	}
	if (is_repair) {
		if (o->fmt == CLI_OUTPUT_READABLE)
			printf(repaired ? "repaired %u cop%s\n" : "both copies valid and identical\n",
			       repaired, repaired == 1 ? "y" : "ies");
		else
			printf("{\"repaired\":%u}\n", repaired);
		rc = 0;
		goto out;
	}
	unsigned bank = md.active_index;
	if (o->bank && parse_index(o->bank, md.num_banks, &bank) < 0) {
		rc = cli_usage_error("fwu", "invalid bank '%s' (A..%c or 0..%u)", o->bank,
				     'A' + md.num_banks - 1, md.num_banks - 1);
		goto out;
	}
	int ret;
	if (strcmp(o->sub, "set-active") == 0) {
		if (!o->bank) {
			rc = cli_usage_error("fwu set-active", "BANK missing");
			goto out;
		}
		if (o->accepted) {
			/* An explicit operator decision: any bank may be made
			 * ACCEPTED and active. */
			unsigned old = md.active_index;
			if (md.version == 2)
				md.bank_state[bank] = FWU_BANK_VALID;
			ret = fwu_md_accept(&md, bank, &err);
			if (ret == 0 && old != bank)
				md.previous_active_index = old;
		} else {
			ret = fwu_md_activate(&md, bank, &err);
		}
		if (ret == 0 && o->previous >= 0) {
			if (o->previous >= md.num_banks) {
				rc = cli_usage_error("fwu set-active", "--previous out of range");
				goto out;
			}
			md.previous_active_index = (uint32_t)o->previous;
		}
	} else if (strcmp(o->sub, "accept") == 0) {
		ret = fwu_md_accept(&md, bank, &err);
	} else {
		ret = fwu_md_reject(&md, bank, &err);
	}
	if (ret < 0) {
		rc = fail(o, &err);
		goto out;
	}
	if (fwu_store_write(st, &md, &err) < 0) {
		rc = fail(o, &err);
		goto out;
	}
	print_result(o, st, &md);
	rc = 0;
out:
	fwu_store_free(st);
	return rc;
}

int cmd_fwu(struct cli_globals *g, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_text, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	struct fwu_opts o = { .sub = argv[1], .previous = -1, .active = 0 };
	static const char *const subs[] = { "dump", "create", "set-active", "accept", "reject",
					    "repair" };
	bool known = false;
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		known = known || strcmp(o.sub, subs[i]) == 0;
	if (!known)
		return cli_usage_error("fwu", "unknown subcommand '%s'", o.sub);
	int rc = parse_opts(g, &o, argc - 1, argv + 1);
	if (rc != 0) {
		board_free(o.bp);
		return rc < 0 ? 0 : rc;
	}
	if (strcmp(o.sub, "dump") == 0)
		rc = cmd_dump(&o);
	else if (strcmp(o.sub, "create") == 0)
		rc = cmd_create(&o);
	else
		rc = cmd_modify(&o);
	board_free(o.bp);
	return rc;
}
