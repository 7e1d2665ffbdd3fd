/* W1's two 3-column products (32x3x16, and 16x3x32 with A transposed) through scipy's OpenBLAS (1 thread) and a
   plain loop, 200,000 calls each, 3 rounds (the figure in bench/RESULTS.md, "tried and dropped"):

       L=$(python -c "import scipy, pathlib; print(pathlib.Path(scipy.__file__).parent.parent / 'scipy.libs')")
       gcc -O3 -fno-math-errno bench/tiny_sgemm.c -o /tmp/tiny_sgemm $L/libscipy_openblas-*.so -Wl,-rpath,$L
       /tmp/tiny_sgemm
*/
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
void scipy_sgemm_(const char*,const char*,const int*,const int*,const int*,const float*,const float*,const int*,const float*,const int*,const float*,float*,const int*);
void scipy_openblas_set_num_threads(int);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
/* row-major C(m x n) = A(m x k) B(k x n), beta */
static void naive(int ta,int m,int n,int k,const float*A,int lda,const float*B,int ldb,float beta,float*C,int ldc){
  for(int i=0;i<m;i++){ float acc[8]={0};
    for(int kk=0;kk<k;kk++){ float a= ta? A[kk*lda+i]:A[i*lda+kk]; for(int j=0;j<n;j++) acc[j]+=a*B[kk*ldb+j]; }
    for(int j=0;j<n;j++) C[i*ldc+j]= beta==0? acc[j] : acc[j]+beta*C[i*ldc+j]; }
}
int main(){ scipy_openblas_set_num_threads(1);
 int shapes[2][4]={{32,3,16,0},{16,3,32,1}};
 float*A=malloc(4096*4),*B=malloc(4096*4),*C=malloc(4096*4),*D=malloc(4096*4);
 for(int i=0;i<4096;i++){A[i]=rand()/(float)RAND_MAX-.5f;B[i]=rand()/(float)RAND_MAX-.5f;}
 for(int s=0;s<2;s++){int m=shapes[s][0],n=shapes[s][1],k=shapes[s][2],ta=shapes[s][3]; float al=1,be=1; int lda=ta?m:k, ldb=n, ldc=n;
  char tA=ta?'T':'N', tB='N';
  for(int rep=0;rep<3;rep++){
  double t=now(); for(int r=0;r<200000;r++) scipy_sgemm_(&tB,&tA,&n,&m,&k,&al,B,&ldb,A,&lda,&be,C,&ldc); double a=(now()-t)/200000;
  t=now(); for(int r=0;r<200000;r++){ naive(ta,m,n,k,A,lda,B,ldb,1,D,ldc); __asm__ volatile(""::"r"(D):"memory");} double b=(now()-t)/200000;
  printf("%dx%dx%d ta=%d: sgemm %.3f us, naive %.3f us\n",m,n,k,ta,a*1e6,b*1e6);}}
}
