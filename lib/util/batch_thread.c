/* batch_thread.c - mark a thread as throughput work for the scheduler. */
#include "abota/batch_thread.h"

#include <sched.h>

void batch_thread_mark(void)
{
#ifdef SCHED_BATCH
	struct sched_param sp = { 0 };
	/* pid 0: on Linux, the calling thread only */
	(void)sched_setscheduler(0, SCHED_BATCH, &sp);
#endif
}
