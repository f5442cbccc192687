/* sdbus_dl.c - sd-bus for the `abota` CLI, from libsystemd.so.0 on first
 * use (see sdbus_dl.h). */
#include "sdbus_dl.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

/* The functions forwarded as they are: return type, name, parameters,
 * arguments, and what to return when libsystemd could not be loaded. */
#define SDBUS_PLAIN(F)                                                                       \
	F(int, sd_bus_add_object_vtable,                                                     \
	  (sd_bus * bus, sd_bus_slot * *slot, const char *path, const char *interface,      \
	   const sd_bus_vtable *vtable, void *userdata),                                     \
	  (bus, slot, path, interface, vtable, userdata), -ENOTSUP)                          \
	F(int, sd_bus_attach_event, (sd_bus * bus, sd_event * e, int priority),             \
	  (bus, e, priority), -ENOTSUP)                                                      \
	F(int, sd_bus_call,                                                                  \
	  (sd_bus * bus, sd_bus_message * m, uint64_t usec, sd_bus_error * ret_error,       \
	   sd_bus_message * *reply),                                                         \
	  (bus, m, usec, ret_error, reply), -ENOTSUP)                                        \
	F(int, sd_bus_creds_get_egid, (sd_bus_creds * c, gid_t * egid), (c, egid), -ENOTSUP) \
	F(int, sd_bus_creds_get_euid, (sd_bus_creds * c, uid_t * euid), (c, euid), -ENOTSUP) \
	F(int, sd_bus_creds_get_supplementary_gids, (sd_bus_creds * c, const gid_t **gids), \
	  (c, gids), -ENOTSUP)                                                               \
	F(sd_bus_creds *, sd_bus_creds_unref, (sd_bus_creds * c), (c), NULL)                 \
	F(int, sd_bus_detach_event, (sd_bus * bus), (bus), -ENOTSUP)                         \
	F(int, sd_bus_emit_properties_changed_strv,                                          \
	  (sd_bus * bus, const char *path, const char *interface, char **names),            \
	  (bus, path, interface, names), -ENOTSUP)                                           \
	F(int, sd_bus_error_has_name, (const sd_bus_error *e, const char *name), (e, name), \
	  0)                                                                                 \
	F(int, sd_bus_error_is_set, (const sd_bus_error *e), (e), 0)                         \
	F(int, sd_bus_error_set, (sd_bus_error * e, const char *name, const char *message), \
	  (e, name, message), -ENOTSUP)                                                      \
	F(int, sd_bus_flush, (sd_bus * bus), (bus), -ENOTSUP)                                \
	F(sd_bus *, sd_bus_flush_close_unref, (sd_bus * bus), (bus), NULL)                   \
	F(int, sd_bus_get_property_string,                                                   \
	  (sd_bus * bus, const char *destination, const char *path, const char *interface,  \
	   const char *member, sd_bus_error *ret_error, char **ret),                         \
	  (bus, destination, path, interface, member, ret_error, ret), -ENOTSUP)             \
	F(int, sd_bus_is_open, (sd_bus * bus), (bus), 0)                                     \
	F(int, sd_bus_match_signal,                                                          \
	  (sd_bus * bus, sd_bus_slot * *ret, const char *sender, const char *path,          \
	   const char *interface, const char *member, sd_bus_message_handler_t callback,    \
	   void *userdata),                                                                  \
	  (bus, ret, sender, path, interface, member, callback, userdata), -ENOTSUP)         \
	F(int, sd_bus_message_append_strv, (sd_bus_message * m, char **l), (m, l), -ENOTSUP) \
	F(int, sd_bus_message_close_container, (sd_bus_message * m), (m), -ENOTSUP)          \
	F(int, sd_bus_message_enter_container,                                               \
	  (sd_bus_message * m, char type, const char *contents), (m, type, contents),       \
	  -ENOTSUP)                                                                          \
	F(int, sd_bus_message_exit_container, (sd_bus_message * m), (m), -ENOTSUP)           \
	F(int, sd_bus_message_new_method_call,                                               \
	  (sd_bus * bus, sd_bus_message * *m, const char *destination, const char *path,    \
	   const char *interface, const char *member),                                       \
	  (bus, m, destination, path, interface, member), -ENOTSUP)                          \
	F(int, sd_bus_message_new_method_return, (sd_bus_message * call, sd_bus_message * *m), \
	  (call, m), -ENOTSUP)                                                               \
	F(int, sd_bus_message_open_container,                                                \
	  (sd_bus_message * m, char type, const char *contents), (m, type, contents),       \
	  -ENOTSUP)                                                                          \
	F(int, sd_bus_message_peek_type,                                                     \
	  (sd_bus_message * m, char *type, const char **contents), (m, type, contents),     \
	  -ENOTSUP)                                                                          \
	F(int, sd_bus_message_read_strv, (sd_bus_message * m, char ***l), (m, l), -ENOTSUP)  \
	F(int, sd_bus_message_skip, (sd_bus_message * m, const char *types), (m, types),    \
	  -ENOTSUP)                                                                          \
	F(sd_bus_message *, sd_bus_message_unref, (sd_bus_message * m), (m), NULL)           \
	F(int, sd_bus_new, (sd_bus * *ret), (ret), -ENOTSUP)                                 \
	F(int, sd_bus_open_system, (sd_bus * *ret), (ret), -ENOTSUP)                         \
	F(int, sd_bus_open_user, (sd_bus * *ret), (ret), -ENOTSUP)                           \
	F(int, sd_bus_process, (sd_bus * bus, sd_bus_message * *r), (bus, r), -ENOTSUP)      \
	F(int, sd_bus_query_sender_creds,                                                    \
	  (sd_bus_message * m, uint64_t mask, sd_bus_creds * *creds), (m, mask, creds),     \
	  -ENOTSUP)                                                                          \
	F(int, sd_bus_request_name, (sd_bus * bus, const char *name, uint64_t flags),       \
	  (bus, name, flags), -ENOTSUP)                                                      \
	F(int, sd_bus_send, (sd_bus * bus, sd_bus_message * m, uint64_t * cookie),          \
	  (bus, m, cookie), -ENOTSUP)                                                        \
	F(int, sd_bus_set_address, (sd_bus * bus, const char *address), (bus, address),     \
	  -ENOTSUP)                                                                          \
	F(int, sd_bus_set_bus_client, (sd_bus * bus, int b), (bus, b), -ENOTSUP)             \
	F(sd_bus_slot *, sd_bus_slot_unref, (sd_bus_slot * slot), (slot), NULL)              \
	F(int, sd_bus_start, (sd_bus * bus), (bus), -ENOTSUP)                                \
	F(sd_bus *, sd_bus_unref, (sd_bus * bus), (bus), NULL)                               \
	F(int, sd_bus_wait, (sd_bus * bus, uint64_t timeout_usec), (bus, timeout_usec),     \
	  -ENOTSUP)                                                                          \
	F(int, sd_event_add_io,                                                              \
	  (sd_event * e, sd_event_source * *s, int fd, uint32_t events,                      \
	   sd_event_io_handler_t callback, void *userdata),                                  \
	  (e, s, fd, events, callback, userdata), -ENOTSUP)                                  \
	F(int, sd_event_get_fd, (sd_event * e), (e), -ENOTSUP)                               \
	F(int, sd_event_new, (sd_event * *e), (e), -ENOTSUP)                                 \
	F(int, sd_event_run, (sd_event * e, uint64_t usec), (e, usec), -ENOTSUP)             \
	F(sd_event_source *, sd_event_source_unref, (sd_event_source * s), (s), NULL)        \
	F(sd_event *, sd_event_unref, (sd_event * e), (e), NULL)

/* The variadic functions go to their va_list twins; sd_bus_error_free
 * returns nothing. */
#define SDBUS_OTHER(F)                                                                       \
	F(int, sd_bus_call_methodv,                                                          \
	  (sd_bus * bus, const char *destination, const char *path, const char *interface,  \
	   const char *member, sd_bus_error *ret_error, sd_bus_message **reply,              \
	   const char *types, va_list ap))                                                  \
	F(int, sd_bus_emit_signalv,                                                          \
	  (sd_bus * bus, const char *path, const char *interface, const char *member,       \
	   const char *types, va_list ap))                                                  \
	F(int, sd_bus_error_setfv,                                                           \
	  (sd_bus_error * e, const char *name, const char *format, va_list ap))             \
	F(int, sd_bus_message_appendv, (sd_bus_message * m, const char *types, va_list ap)) \
	F(int, sd_bus_message_readv, (sd_bus_message * m, const char *types, va_list ap))   \
	F(int, sd_bus_reply_method_errorfv,                                                  \
	  (sd_bus_message * call, const char *name, const char *format, va_list ap))        \
	F(int, sd_bus_reply_method_returnv,                                                  \
	  (sd_bus_message * call, const char *types, va_list ap))                           \
	F(void, sd_bus_error_free, (sd_bus_error * e))

/* NOLINTNEXTLINE(bugprone-macro-parentheses): a declarator, not an expression */
#define POINTER(ret, name, params) ret(*name) params;
#define POINTER_PLAIN(ret, name, params, args, fail) POINTER(ret, name, params)
static struct {
	SDBUS_PLAIN(POINTER_PLAIN)
	SDBUS_OTHER(POINTER)
} fn;
#undef POINTER_PLAIN
#undef POINTER

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];
static bool loaded;

/* SD_BUS_VTABLE_START points each vtable at this variable; libsystemd
 * (since v242, which exports its own, checked for below) only looks at
 * whether the pointer is set, to know the vtable has the v242 layout. */
const unsigned sd_bus_object_vtable_format = 242;

static void load(void)
{
	void *h = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(load_error, sizeof(load_error), "D-Bus needs libsystemd.so.0: %s",
			 dlerror());
		return;
	}
	struct {
		const char *name;
		void **slot;
	} syms[] = {
#define ENTRY(ret, name, ...) { #name, (void **)&fn.name },
		SDBUS_PLAIN(ENTRY) SDBUS_OTHER(ENTRY)
#undef ENTRY
		{ "sd_bus_object_vtable_format", NULL },
	};
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		void *p = dlsym(h, syms[i].name);
		if (!p) {
			snprintf(load_error, sizeof(load_error),
				 "D-Bus: libsystemd.so.0 has no %s (systemd 242 or later is needed)",
				 syms[i].name);
			memset(&fn, 0, sizeof(fn));
			return; /* the handle stays open: harmless */
		}
		if (syms[i].slot)
			*syms[i].slot = p;
	}
	loaded = true;
}

int sdbus_dl_load(const char **why)
{
	pthread_once(&once, load);
	if (!loaded) {
		if (why)
			*why = load_error;
		return -ENOTSUP;
	}
	return 0;
}

#define FORWARD(ret, name, params, args, fail) \
	ret name params                        \
	{                                      \
		if (sdbus_dl_load(NULL) < 0)   \
			return fail;           \
		return fn.name args;           \
	}
SDBUS_PLAIN(FORWARD)
#undef FORWARD

void sd_bus_error_free(sd_bus_error *e)
{
	/* nothing can have set an error if libsystemd is not there */
	if (sdbus_dl_load(NULL) == 0)
		fn.sd_bus_error_free(e);
}

/* A variadic function through its va_list twin vname; last is its last
 * named parameter, args its parameters before the va_list. */
#define FORWARD_VA(name, params, last, vname, ...)               \
	int name params                                          \
	{                                                        \
		if (sdbus_dl_load(NULL) < 0)                     \
			return -ENOTSUP;                         \
		va_list ap;                                      \
		va_start(ap, last);                              \
		int r = fn.vname(__VA_ARGS__, ap);               \
		va_end(ap);                                      \
		return r;                                        \
	}
FORWARD_VA(sd_bus_call_method,
	   (sd_bus *bus, const char *destination, const char *path, const char *interface,
	    const char *member, sd_bus_error *ret_error, sd_bus_message **reply, const char *types,
	    ...),
	   types, sd_bus_call_methodv, bus, destination, path, interface, member, ret_error, reply,
	   types)
FORWARD_VA(sd_bus_emit_signal,
	   (sd_bus *bus, const char *path, const char *interface, const char *member,
	    const char *types, ...),
	   types, sd_bus_emit_signalv, bus, path, interface, member, types)
FORWARD_VA(sd_bus_error_setf, (sd_bus_error *e, const char *name, const char *format, ...),
	   format, sd_bus_error_setfv, e, name, format)
FORWARD_VA(sd_bus_message_append, (sd_bus_message *m, const char *types, ...), types,
	   sd_bus_message_appendv, m, types)
FORWARD_VA(sd_bus_message_read, (sd_bus_message *m, const char *types, ...), types,
	   sd_bus_message_readv, m, types)
FORWARD_VA(sd_bus_reply_method_errorf,
	   (sd_bus_message *call, const char *name, const char *format, ...), format,
	   sd_bus_reply_method_errorfv, call, name, format)
FORWARD_VA(sd_bus_reply_method_return, (sd_bus_message *call, const char *types, ...), types,
	   sd_bus_reply_method_returnv, call, types)
#undef FORWARD_VA
