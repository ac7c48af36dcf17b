/*
 * Fault injection for tests (tests/fault.c, a test-only shared library; the
 * library itself has no hook and release builds contain none of this).
 *
 * A test program linked with it, before libOpenCL, interposes the OpenCL
 * entry points that libwarploss calls: each call is counted by kind and
 * forwarded to the real one (dlsym RTLD_NEXT), except the one armed call,
 * which fails with the chosen error without doing anything (clFinish does
 * the real work first, then reports the error). It also counts the OpenCL
 * objects alive (created or retained minus released) to find leaks, and can
 * lower the answer to clGetDeviceInfo(CL_DEVICE_MAX_MEM_ALLOC_SIZE).
 * Not thread-safe: for single-threaded test programs. A call the library
 * starts to use (a new clEnqueue*, a new way to make an object) needs a hook
 * here too, or the counts of live objects go wrong.
 */
#ifndef WL_TEST_FAULT_H
#define WL_TEST_FAULT_H

#include "warploss.h"

typedef enum wlf_kind {
    WLF_PLATFORM_IDS,   /* clGetPlatformIDs */
    WLF_DEVICE_IDS,     /* clGetDeviceIDs */
    WLF_CONTEXT,        /* clCreateContext */
    WLF_QUEUE,          /* clCreateCommandQueue */
    WLF_BUFFER,         /* clCreateBuffer of new memory, clCreateSubBuffer */
    WLF_WRAP,           /* clCreateBuffer with CL_MEM_USE_HOST_PTR (the library falls back to staging) */
    WLF_PROGRAM_SOURCE, /* clCreateProgramWithSource */
    WLF_PROGRAM_BINARY, /* clCreateProgramWithBinary (the library rebuilds from source) */
    WLF_BUILD,          /* clBuildProgram of a program from source */
    WLF_BUILD_BINARY,   /* clBuildProgram of a program from a binary (the library rebuilds) */
    WLF_PROGRAM_INFO,   /* clGetProgramInfo (only to store the cache; best effort) */
    WLF_KERNEL,         /* clCreateKernel */
    WLF_KERNEL_INFO,    /* clGetKernelWorkGroupInfo */
    WLF_DEVICE_INFO,    /* clGetDeviceInfo, clGetPlatformInfo */
    WLF_SET_ARG,        /* clSetKernelArg */
    WLF_NDRANGE,        /* clEnqueueNDRangeKernel */
    WLF_WRITE,          /* clEnqueueWriteBuffer */
    WLF_READ,           /* clEnqueueReadBuffer */
    WLF_FILL,           /* clEnqueueFillBuffer */
    WLF_COPY,           /* clEnqueueCopyBuffer */
    WLF_MAP,            /* clEnqueueMapBuffer, clEnqueueUnmapMemObject */
    WLF_MARKER,         /* clEnqueueMarkerWithWaitList, clEnqueueBarrierWithWaitList */
    WLF_FINISH,         /* clFinish */
    WLF_KIND_COUNT
} wlf_kind;

typedef enum wlf_object {
    WLF_MEM,
    WLF_PROGRAM,
    WLF_KERNEL_OBJ,
    WLF_EVENT,
    WLF_QUEUE_OBJ,
    WLF_CONTEXT_OBJ,
    WLF_OBJECT_COUNT
} wlf_object;

const char *wlf_kind_name(wlf_kind k);

/* Calls of each kind since the last wlf_reset_counts(). */
void wlf_reset_counts(void);
unsigned long wlf_count(wlf_kind k);

/* Fail the nth (1-based, counted from the last reset) call of kind k with err. */
void wlf_arm(wlf_kind k, unsigned long nth, cl_int err);
void wlf_disarm(void);
/* Whether the armed fault has fired, and the OpenCL function it failed. */
int wlf_fired(void);
const char *wlf_fired_call(void);
/* The file of the object (program or shared library) whose code made the
 * failed call: libwarploss's own calls, or those of a library it uses (CLBlast). */
const char *wlf_fired_caller(void);
/* The same for the nth call of kind k since the last reset ("" if unknown). */
const char *wlf_caller(wlf_kind k, unsigned long nth);

/* Objects alive of one type, and of all types. */
long wlf_live(wlf_object o);
long wlf_live_total(void);

/* Answer clGetDeviceInfo(CL_DEVICE_MAX_MEM_ALLOC_SIZE) with at most this (0: the device's own). */
void wlf_set_max_alloc(cl_ulong bytes);

/* Total calls that went through the hooks since the program started: > 0
 * proves the interposition is in place. */
unsigned long wlf_hooked_calls(void);

#endif
