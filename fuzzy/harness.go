package fuzzy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hashicorp/go-hclog"
	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/internal/nodeclock"
)

// Options describe one run: a cluster, a fault schedule drawn from Seed,
// and clients writing and reading through the library.
type Options struct {
	Seed     uint64
	Nodes    int           // cluster size (3 or 5)
	Duration time.Duration // how long faults are injected (virtual time in a bubble)
	Clients  int
	Keys     int
	// StaleReads is the known-bad control: reads are served from a random
	// node's local state, without VerifyLeader. The checker must catch it.
	StaleReads bool
	// Clocks is the clock nemesis (default ClocksWithinDrift).
	Clocks ClockMode
	// TCP runs the nodes over the real TCP transport on loopback instead of
	// the in-memory one. Such a run uses real time: do not run it inside a
	// synctest bubble.
	TCP bool
	// Joint makes joint configuration changes (ChangeConfiguration) a
	// quarter of the faults injected, besides the usual share.
	Joint    bool
	Log      io.Writer   // the nodes' logs (nil: discarded)
	LogLevel hclog.Level // their level (zero: Info)
}

func (o *Options) defaults() {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Duration == 0 {
		o.Duration = 5 * time.Second
	}
	if o.Clients == 0 {
		o.Clients = 4
		if o.Clocks != ClocksWithinDrift {
			// The targeted clock schedules look for reads in windows of a
			// few milliseconds: more clients, more reads in them.
			o.Clients = 12
		}
	}
	if o.Keys == 0 {
		o.Keys = 3
		if o.Clocks != ClocksWithinDrift {
			o.Keys = 12 // fewer operations per key for the checker
		}
	}
	if o.LogLevel == hclog.NoLevel {
		o.LogLevel = hclog.Info
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Report is what a run saw and found.
type Report struct {
	Seed         uint64
	Schedule     []string // the fault events, with their virtual times
	Violations   []string // safety and liveness failures (must be empty)
	Ops          int      // operations in the history checked
	Unknown      int      // writes whose outcome is unknown
	Elections    int      // terms in which a leader sent AppendEntries
	Crashes      int
	Restores     int // snapshots restored into an FSM (at start or installed)
	Changes      int // membership changes started (add, remove, demote, joint)
	JointChanges int // of those, ChangeConfiguration calls (joint consensus)
	JointDone    int // of those, calls that succeeded
	UserRestores int
	Messages     int
	Dropped      int
	Duplicated   int

	history []porcupine.Operation
}

// node is one server and its durable state across crashes.
type node struct {
	id    raft.ServerID
	addr  raft.ServerAddress
	inmem *raft.InmemTransport // nil over TCP
	trans *transport
	disk  *diskStore
	snaps *raft.InmemSnapshotStore
	fsm   *kv
	r     *raft.Raft
	up    bool
	clock *nodeclock.Skewed // the machine's clock, across restarts
}

// chanLock is a mutex a synctest bubble can wait on durably.
type chanLock chan struct{}

func (l chanLock) Lock()   { l <- struct{}{} }
func (l chanLock) Unlock() { <-l }

type cluster struct {
	opts   Options
	rng    *rand.Rand
	net    *network
	nodes  []*node
	lock   chanLock // guards nodes' r, fsm and up, and fsms
	fsms   []*kv    // every FSM incarnation, for the safety checks
	start  time.Time
	report *Report
	async  sync.WaitGroup // transfers and snapshots started by the schedule
	// abandoned are the futures clients stopped waiting for (waitFuture);
	// added to by clients, so waited for only once they have stopped.
	abandoned sync.WaitGroup
	clock     atomic.Int64 // the history's logical clock
	// restores are the user Restores the schedule ran, as operations on
	// every key (guarded by lock).
	restores []porcupine.Operation
	nRestore int
	// transports are all the transports made, old incarnations included,
	// so that every goroutine they started can be waited for.
	transports []*transport
	// rafts are all the nodes' incarnations: one removed from the cluster
	// shuts itself down, and its goroutines must end before a run does.
	rafts []*raft.Raft
}

func (c *cluster) config(i int, n *node) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = n.id
	conf.HeartbeatTimeout = 50 * time.Millisecond
	conf.ElectionTimeout = 50 * time.Millisecond
	conf.LeaderLeaseTimeout = 50 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = 64
	conf.SnapshotInterval = 150 * time.Millisecond
	conf.TrailingLogs = 32
	conf.RandomSeed = c.opts.Seed*31 + uint64(i) + 1
	// Odd seeds read from the leader's lease when it holds; the targeted
	// clock schedules always do.
	conf.LeaseReads = c.opts.Seed%2 == 1 || c.opts.Clocks != ClocksWithinDrift
	conf.LeaseClockDrift = leaseDrift
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: string(n.id), Output: c.opts.Log, Level: c.opts.LogLevel})
	return conf
}

// Run runs one schedule. Call it inside a testing/synctest bubble: the
// schedule, timeouts and waits then run on virtual time and repeat exactly
// for a seed. The returned report's Check runs the linearizability checker
// (call it outside the bubble, where its timeout is real time).
func Run(opts Options) *Report {
	opts.defaults()
	c := &cluster{
		opts:   opts,
		rng:    rand.New(rand.NewPCG(opts.Seed, 0x7363686564)),
		net:    newNetwork(opts.Seed),
		lock:   make(chanLock, 1),
		report: &Report{Seed: opts.Seed},
		start:  time.Now(),
	}
	var servers []raft.Server
	for i := 0; i < opts.Nodes; i++ {
		n := &node{id: raft.ServerID(fmt.Sprintf("n%d", i)), snaps: raft.NewInmemSnapshotStore(),
			clock: nodeclock.NewSkewed(c.drawRate(leaseDrift))}
		if err := c.openTransport(n); err != nil {
			c.violation("transport for %s: %v", n.id, err)
			return c.report
		}
		n.disk = newDiskStore(raft.NewInmemStore())
		c.nodes = append(c.nodes, n)
		servers = append(servers, raft.Server{ID: n.id, Address: n.addr})
	}
	c.connect()
	c.event("clocks: %s", c.clockRates())
	for i, n := range c.nodes {
		if err := raft.BootstrapCluster(c.config(i, n), n.disk, n.disk, n.snaps, n.trans, raft.Configuration{Servers: servers}); err != nil {
			c.violation("bootstrap %s: %v", n.id, err)
			return c.report
		}
		c.boot(i, n)
	}

	stop := make(chan struct{})
	var clients sync.WaitGroup
	hist := make([][]porcupine.Operation, opts.Clients)
	for i := 0; i < opts.Clients; i++ {
		clients.Add(1)
		go func() {
			defer clients.Done()
			hist[i] = c.client(i, stop)
		}()
	}

	c.schedule()
	c.heal()
	c.checkLiveness()
	close(stop)
	// Every future resolves: clients and the schedule's calls return
	// within a bound while the cluster still runs.
	if !waitWithin(&clients, 30*time.Second) || !waitWithin(&c.async, 30*time.Second) {
		c.violation("futures: calls still unresolved 30s after the faults ended")
	}
	c.converge()
	c.shutdown()
	clients.Wait()
	c.async.Wait()
	c.abandoned.Wait()

	end := c.clock.Add(1)
	for _, h := range hist {
		for _, o := range h {
			if o.Output.(kvOutput).Unknown {
				o.Return = end
				c.report.Unknown++
			}
			c.report.history = append(c.report.history, o)
		}
	}
	for _, o := range c.restores {
		if o.Output.(kvOutput).Unknown {
			o.Return = end
		}
		c.report.history = append(c.report.history, o)
	}
	c.report.Ops = len(c.report.history)
	c.checkSafety(hist)
	c.report.Violations = append(c.report.Violations, c.net.violations()...)
	c.report.Elections = c.net.termsWithLeaders()
	for _, f := range c.fsms {
		c.report.Restores += f.restoreCount()
	}
	c.net.mu.Lock()
	c.report.Messages, c.report.Dropped, c.report.Duplicated = c.net.stats.sent, c.net.stats.dropped, c.net.stats.duplicated
	c.net.mu.Unlock()
	return c.report
}

// waitWithin waits for wg at most d.
func waitWithin(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func (c *cluster) violation(format string, args ...any) {
	c.report.Violations = append(c.report.Violations, fmt.Sprintf(format, args...))
}

func (c *cluster) event(format string, args ...any) {
	at := time.Since(c.start).Round(time.Millisecond)
	c.report.Schedule = append(c.report.Schedule, fmt.Sprintf("%8v %s", at, fmt.Sprintf(format, args...)))
}

// openTransport gives n a transport: in memory, or TCP on loopback (on
// its old address when it restarts).
func (c *cluster) openTransport(n *node) error {
	if !c.opts.TCP {
		n.addr, n.inmem = raft.NewInmemTransport(n.addr)
		n.trans = newTransport(c.net, n.id, n.inmem)
		c.transports = append(c.transports, n.trans)
		return nil
	}
	bind := "127.0.0.1:0"
	if n.addr != "" {
		bind = string(n.addr)
	}
	var err error
	for attempt := 0; attempt < 100; attempt++ {
		var tcp *raft.NetworkTransport
		tcp, err = raft.NewTCPTransportWithLogger(bind, nil, 3, time.Second, hclog.NewNullLogger())
		if err == nil {
			n.addr = tcp.LocalAddr()
			n.trans = newTransport(c.net, n.id, tcp)
			c.transports = append(c.transports, n.trans)
			return nil
		}
		time.Sleep(20 * time.Millisecond) // the old listener is closing
	}
	return err
}

// connect routes every node's in-memory transport to every other's.
func (c *cluster) connect() {
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b && a.inmem != nil && b.inmem != nil {
				a.inmem.Connect(b.addr, b.inmem)
			}
		}
	}
}

func (c *cluster) boot(i int, n *node) {
	n.fsm = newKV()
	conf := c.config(i, n)
	nodeclock.Set(conf, n.clock)
	r, err := raft.NewRaft(conf, n.fsm, n.disk, n.disk, n.snaps, n.trans)
	nodeclock.Clear(conf)
	if err != nil {
		c.violation("NewRaft %s: %v", n.id, err)
		return
	}
	c.lock.Lock()
	n.r, n.up = r, true
	c.fsms = append(c.fsms, n.fsm)
	c.rafts = append(c.rafts, r)
	c.lock.Unlock()
}

// crash stops a node as power loss would: what its disk had completed
// survives, nothing else.
func (c *cluster) crash(n *node) {
	c.lock.Lock()
	n.up = false
	c.lock.Unlock()
	saved, err := n.disk.crash()
	if err != nil {
		c.violation("crash %s: %v", n.id, err)
		return
	}
	_ = n.trans.Close()
	for _, m := range c.nodes {
		if m.inmem != nil {
			m.inmem.Disconnect(n.addr)
		}
	}
	if err := n.r.Shutdown().Error(); err != nil {
		c.violation("shutdown %s: %v", n.id, err)
	}
	n.disk = newDiskStore(saved)
	c.report.Crashes++
}

func (c *cluster) restart(i int, n *node) {
	_ = n.trans.Close()
	if err := c.openTransport(n); err != nil {
		c.violation("restart %s: %v", n.id, err)
		return
	}
	c.connect()
	c.boot(i, n)
}

// leaderOrAny returns the node that thinks it leads (of those that do
// while a deposed leader has not noticed yet, the one with the newest
// term, as a client retrying elsewhere would end up using), or else a
// random running node, with the raft and FSM of the same incarnation.
func (c *cluster) leaderOrAny(rng *rand.Rand) (*raft.Raft, *kv) {
	c.lock.Lock()
	defer c.lock.Unlock()
	var up []*node
	var leader *node
	for _, n := range c.nodes {
		if n.up {
			switch n.r.State() {
			case raft.Leader:
				if leader == nil || n.r.CurrentTerm() > leader.r.CurrentTerm() {
					leader = n
				}
			case raft.Shutdown:
				continue
			}
			up = append(up, n)
		}
	}
	if leader != nil {
		return leader.r, leader.fsm
	}
	if len(up) == 0 {
		return nil, nil
	}
	n := up[rng.IntN(len(up))]
	return n.r, n.fsm
}

// anyNode is a random running node, leader or not, with its state machine.
func (c *cluster) anyNode(rng *rand.Rand) (*raft.Raft, *kv) {
	c.lock.Lock()
	defer c.lock.Unlock()
	var up []*node
	for _, n := range c.nodes {
		if n.up && n.r.State() != raft.Shutdown {
			up = append(up, n)
		}
	}
	if len(up) == 0 {
		return nil, nil
	}
	n := up[rng.IntN(len(up))]
	return n.r, n.fsm
}

// readIndexRead reads key linearizably on r, leader or follower: ReadIndex
// (a follower asks its leader), then a wait until r has applied it, as
// ReadBarrier does but bounded, so that a node cut off after the index
// came does not hold the client past the run.
func (c *cluster) readIndexRead(r *raft.Raft, fsm *kv, key string) (kvOutput, bool) {
	rf := r.ReadIndex(500 * time.Millisecond)
	if err := rf.Error(); err != nil {
		return kvOutput{}, false
	}
	for deadline := time.Now().Add(time.Second); r.AppliedIndex() < rf.Index(); {
		if time.Now().After(deadline) {
			return kvOutput{}, false
		}
		time.Sleep(time.Millisecond)
	}
	return kvOutput{result: result{Value: fsm.read(key)}}, true
}

// anyFSM is a random running node's state machine.
func (c *cluster) anyFSM(rng *rand.Rand) *kv {
	c.lock.Lock()
	defer c.lock.Unlock()
	var up []*node
	for _, n := range c.nodes {
		if n.up {
			up = append(up, n)
		}
	}
	if len(up) == 0 {
		return nil
	}
	return up[rng.IntN(len(up))].fsm
}

func (c *cluster) leader() *node {
	c.lock.Lock()
	defer c.lock.Unlock()
	for _, n := range c.nodes {
		if n.up && n.r.State() == raft.Leader {
			return n
		}
	}
	return nil
}

// schedule injects faults until the run's duration is over.
func (c *cluster) schedule() {
	deadline := c.start.Add(c.opts.Duration)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(100+c.rng.IntN(400)) * time.Millisecond)
		c.inject()
	}
}

func (c *cluster) inject() {
	if c.opts.Clocks != ClocksWithinDrift {
		c.slowLeaderAndCut()
		return
	}
	n := len(c.nodes)
	if c.opts.Joint && c.rng.IntN(4) == 0 {
		if l := c.leader(); l != nil {
			c.jointChange(l)
		}
		return
	}
	switch k := c.rng.IntN(16); k {
	case 0, 1: // symmetric partition into two random sides (replacing cuts)
		c.net.clearCuts()
		side := c.randomSubset(1 + c.rng.IntN(n-1))
		c.cutBetween(side, c.complement(side), true)
		c.event("partition %v | %v", ids(side), ids(c.complement(side)))
	case 2: // one-way cut
		a, b := c.nodes[c.rng.IntN(n)], c.nodes[c.rng.IntN(n)]
		if a != b {
			c.net.setCut(a.addr, b.addr, true)
			c.event("cut %s -> %s", a.id, b.id)
		}
	case 3: // the leader cut off with 0-3 others
		l := c.leader()
		if l == nil {
			return
		}
		c.net.clearCuts()
		others := c.randomSubset(c.rng.IntN(min(3, n-2) + 1))
		side := []*node{l}
		for _, o := range others {
			if o != l {
				side = append(side, o)
			}
		}
		c.cutBetween(side, c.complement(side), true)
		c.event("leader %s cut off with %v", l.id, ids(side[1:]))
	case 4: // a bridge: one node sees both halves, which cannot see each other
		b := c.nodes[c.rng.IntN(n)]
		var rest []*node
		for _, m := range c.nodes {
			if m != b {
				rest = append(rest, m)
			}
		}
		c.rng.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
		c.net.clearCuts()
		half := len(rest) / 2
		c.cutBetween(rest[:half], rest[half:], true)
		c.event("bridge %s between %v and %v", b.id, ids(rest[:half]), ids(rest[half:]))
	case 5: // message faults
		f := faults{drop: c.rng.Float64() * 0.2, dup: c.rng.Float64() * 0.2,
			maxDelay: time.Duration(c.rng.IntN(20)) * time.Millisecond}
		c.net.setFaults(f)
		c.event("messages: drop %.2f dup %.2f delay <%v", f.drop, f.dup, f.maxDelay)
	case 6: // crash a running node, keeping a majority able to run
		i := c.rng.IntN(n)
		if c.nodes[i].up && c.down() < (n-1)/2 {
			c.event("crash %s", c.nodes[i].id)
			c.crash(c.nodes[i])
		}
	case 7: // restart a crashed node
		for i, m := range c.nodes {
			if !m.up {
				c.event("restart %s", m.id)
				c.restart(i, m)
				break
			}
		}
	case 8: // a slow disk
		m := c.nodes[c.rng.IntN(n)]
		l := time.Duration(c.rng.IntN(4)*10) * time.Millisecond
		m.disk.setLatency(l)
		c.event("disk %s latency %v", m.id, l)
	case 9: // leadership transfer
		if l := c.leader(); l != nil {
			c.event("transfer from %s", l.id)
			c.async.Add(1)
			go func() { defer c.async.Done(); _ = l.r.LeadershipTransfer().Error() }()
		}
	case 10: // a user snapshot
		m := c.nodes[c.rng.IntN(n)]
		c.lock.Lock()
		r, up := m.r, m.up
		c.lock.Unlock()
		if up {
			c.event("snapshot on %s", m.id)
			c.async.Add(1)
			go func() { defer c.async.Done(); _ = r.Snapshot().Error() }()
		}
	case 11:
		c.net.healAll()
		c.event("heal")
	case 12, 13: // membership: remove (the leader too), demote, add back
		c.changeMembership()
	case 14: // a user Restore on the leader
		c.userRestore()
	case 15: // a clock changes its rate
		c.changeClock()
	}
}

// voters returns the leader and its latest configuration's voters.
func (c *cluster) voters() (*node, map[raft.ServerID]bool) {
	l := c.leader()
	if l == nil {
		return nil, nil
	}
	f := l.r.GetConfiguration()
	if f.Error() != nil {
		return nil, nil
	}
	v := map[raft.ServerID]bool{}
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			v[s.ID] = true
		}
	}
	return l, v
}

func (c *cluster) changeMembership() {
	l, voters := c.voters()
	if l == nil {
		return
	}
	m := c.nodes[c.rng.IntN(len(c.nodes))]
	switch {
	case c.rng.IntN(3) == 0:
		c.jointChange(l)
	case !voters[m.id]:
		c.report.Changes++
		c.event("add voter %s (through %s)", m.id, l.id)
		c.addBack(l, m)
	case len(voters) > 2 && c.rng.IntN(2) == 0:
		c.report.Changes++
		c.event("remove %s (through %s)", m.id, l.id)
		c.async.Add(1)
		go func() { defer c.async.Done(); _ = l.r.RemoveServer(m.id, 0, time.Second).Error() }()
	case len(voters) > 2:
		c.report.Changes++
		c.event("demote %s (through %s)", m.id, l.id)
		c.async.Add(1)
		go func() { defer c.async.Done(); _ = l.r.DemoteVoter(m.id, 0, time.Second).Error() }()
	}
}

// jointChange moves the cluster through ChangeConfiguration to a random
// configuration: each node a voter, a nonvoter or absent, so that several
// voters are swapped, promoted and demoted at once. Half the time the
// leader crashes a moment later, in the middle of the joint phase (if a
// majority stays up).
func (c *cluster) jointChange(l *node) {
	var next raft.Configuration
	voters := 0
	for _, n := range c.nodes {
		s := raft.Server{ID: n.id, Address: n.addr}
		switch k := c.rng.IntN(10); {
		case k < 6:
			s.Suffrage = raft.Voter
			voters++
		case k < 8:
			s.Suffrage = raft.Nonvoter
		default:
			continue
		}
		next.Servers = append(next.Servers, s)
	}
	if voters == 0 {
		n := c.nodes[c.rng.IntN(len(c.nodes))]
		next.Servers = append(slices.DeleteFunc(next.Servers, func(s raft.Server) bool { return s.ID == n.id }),
			raft.Server{Suffrage: raft.Voter, ID: n.id, Address: n.addr})
	}
	c.report.Changes++
	c.report.JointChanges++
	c.event("joint change to %v (through %s)", next.Servers, l.id)
	c.async.Add(1)
	go func() {
		defer c.async.Done()
		if l.r.ChangeConfiguration(next, 0, time.Second).Error() == nil {
			c.lock.Lock()
			c.report.JointDone++
			c.lock.Unlock()
		}
	}()
	if c.rng.IntN(2) == 0 {
		time.Sleep(time.Duration(c.rng.IntN(30)) * time.Millisecond)
		c.lock.Lock()
		up := l.up
		c.lock.Unlock()
		if up && c.down() < (len(c.nodes)-1)/2 {
			c.event("crash %s in the joint phase", l.id)
			c.crash(l)
		}
	}
}

// addBack makes m a voter again, restarting it first if it shut itself
// down when it was removed.
func (c *cluster) addBack(l, m *node) {
	for i, n := range c.nodes {
		if n == m && n.up && n.r.State() == raft.Shutdown {
			c.lock.Lock()
			n.up = false
			c.lock.Unlock()
			c.restart(i, n)
		}
	}
	c.async.Add(1)
	go func() { defer c.async.Done(); _ = l.r.AddVoter(m.id, m.addr, 0, time.Second).Error() }()
}

// userRestore restores the leader's FSM from a user's snapshot holding a
// fresh value for every key, recorded as an operation on each key.
func (c *cluster) userRestore() {
	l := c.leader()
	if l == nil {
		return
	}
	c.nRestore++
	c.report.UserRestores++
	state := kvState{Data: map[string]string{}}
	for k := 0; k < c.opts.Keys; k++ {
		state.Data[fmt.Sprintf("k%d", k)] = fmt.Sprintf("R%d;", c.nRestore)
	}
	data, _ := json.Marshal(&state)
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: int64(len(data))}
	c.event("user restore %d on %s", c.nRestore, l.id)
	call := c.clock.Add(1)
	err := l.r.Restore(meta, bytes.NewReader(data), time.Second)
	ret := c.clock.Add(1)
	out := kvOutput{}
	switch {
	case err == nil:
	case errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout):
		return // never happened
	default:
		out.Unknown = true
	}
	c.lock.Lock()
	defer c.lock.Unlock()
	for key, v := range state.Data {
		c.restores = append(c.restores, porcupine.Operation{ClientId: c.opts.Clients,
			Input: op{Kind: "restore", Key: key, Value: v}, Call: call, Output: out, Return: ret})
	}
}

func (c *cluster) down() int {
	d := 0
	for _, n := range c.nodes {
		if !n.up {
			d++
		}
	}
	return d
}

func (c *cluster) randomSubset(k int) []*node {
	perm := c.rng.Perm(len(c.nodes))
	out := make([]*node, 0, k)
	for _, i := range perm[:k] {
		out = append(out, c.nodes[i])
	}
	return out
}

func (c *cluster) complement(side []*node) []*node {
	in := map[*node]bool{}
	for _, n := range side {
		in[n] = true
	}
	var out []*node
	for _, n := range c.nodes {
		if !in[n] {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) cutBetween(a, b []*node, cut bool) {
	for _, x := range a {
		for _, y := range b {
			c.net.setCut(x.addr, y.addr, cut)
			c.net.setCut(y.addr, x.addr, cut)
		}
	}
}

func ids(nodes []*node) []raft.ServerID {
	out := make([]raft.ServerID, len(nodes))
	for i, n := range nodes {
		out[i] = n.id
	}
	return out
}

// heal ends the faults: the network is whole, crashed nodes restart and
// disks are fast again.
func (c *cluster) heal() {
	// Membership changes still in flight would undo the re-adding below.
	if !waitWithin(&c.async, 30*time.Second) {
		c.violation("futures: membership changes, transfers or snapshots unresolved 30s after the faults ended")
	}
	c.net.healAll()
	for i, n := range c.nodes {
		n.disk.setLatency(0)
		if !n.up {
			c.restart(i, n)
		}
	}
	c.event("heal all, restart all")
	for attempt := 0; attempt < 100; attempt++ {
		l, voters := c.voters()
		if l == nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		missing := false
		for _, n := range c.nodes {
			if !voters[n.id] {
				missing = true
				if err := l.r.AddVoter(n.id, n.addr, 0, time.Second).Error(); err != nil {
					break
				}
			}
		}
		// A node removed earlier may have shut itself down.
		for i, n := range c.nodes {
			if n.r.State() == raft.Shutdown {
				c.lock.Lock()
				n.up = false
				c.lock.Unlock()
				c.restart(i, n)
				missing = true
			}
		}
		if !missing {
			return
		}
	}
	c.violation("liveness: the configuration did not take every node back within 100 attempts:%s", c.describe())
}

// describe lists each node's view, for a violation's report.
func (c *cluster) describe() string {
	var b strings.Builder
	for _, n := range c.nodes {
		st := n.r.Stats()
		fmt.Fprintf(&b, "\n    %s up=%v state=%s term=%s last=%s commit=%s applied=%s config=%s", n.id, n.up,
			st["state"], st["term"], st["last_log_index"], st["commit_index"], st["applied_index"], st["latest_configuration"])
	}
	return b.String()
}

// checkLiveness requires a leader that commits a write within a bound
// once the faults have stopped.
func (c *cluster) checkLiveness() {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l := c.leader(); l != nil {
			if err := l.r.Apply(mustJSON(op{Kind: "put", Key: "__live", Value: "x", ID: fmt.Sprintf("live-%d", c.clock.Add(1))}), time.Second).Error(); err == nil {
				c.event("liveness: %s committed a write", l.id)
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.violation("liveness: no leader committed a write within 10s of the faults ending")
}

// converge waits until every node has applied the same index, then
// requires equal state.
func (c *cluster) converge() {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l := c.leader()
		if l == nil || l.r.Barrier(time.Second).Error() != nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		want := l.r.AppliedIndex()
		for time.Now().Before(deadline) {
			all := true
			for _, n := range c.nodes {
				if n.r.AppliedIndex() < want {
					all = false
				}
			}
			if all {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		ref := l.fsm.dump()
		for _, n := range c.nodes {
			if got := n.fsm.dump(); got != ref {
				c.violation("convergence: %s's state differs from the leader %s's (leader applied %d): %s vs %s:%s",
					n.id, l.id, want, n.fsm.summary(), l.fsm.summary(), c.describe()+"\n    "+stateDiff(got, ref))
			}
		}
		return
	}
	c.violation("convergence: no leader could run a barrier within 10s")
}

func (c *cluster) shutdown() {
	for _, n := range c.nodes {
		if n.up {
			if err := n.r.Shutdown().Error(); err != nil {
				c.violation("shutdown %s: %v", n.id, err)
			}
		}
	}
	for _, r := range c.rafts {
		_ = r.Shutdown().Error() // earlier incarnations too; waits for their goroutines
	}
	for _, t := range c.transports {
		_ = t.Close() // ends pending duplicates
	}
	for _, t := range c.transports {
		t.wait() // an RPC in flight ends by its timeout
	}
}

func mustJSON(o op) []byte {
	b, err := json.Marshal(o)
	if err != nil {
		panic(err) // an op always encodes
	}
	return b
}

// client runs operations until stop, recording each one's invocation and
// response on the history's logical clock.
func (c *cluster) client(id int, stop <-chan struct{}) []porcupine.Operation {
	rng := rand.New(rand.NewPCG(c.opts.Seed, uint64(id)+100))
	var hist []porcupine.Operation
	seq := 0
	for {
		select {
		case <-stop:
			return hist
		default:
		}
		time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
		seq++
		o := op{Key: fmt.Sprintf("k%d", rng.IntN(c.opts.Keys)), ID: fmt.Sprintf("c%d-%d", id, seq)}
		val := fmt.Sprintf("%d.%d;", id, seq)
		switch p := rng.IntN(100); {
		case p < 15:
			o.Kind = "get"
		case p < 30:
			o.Kind = "read" // the read path, recorded as a get
		case p < 45:
			o.Kind = "readindex" // ReadIndex on any node, recorded as a get
		case p < 63:
			o.Kind, o.Value = "put", val
		case p < 85:
			o.Kind, o.Value = "append", val
		default:
			o.Kind, o.Value = "cas", val
			r, fsm := c.leaderOrAny(rng)
			if r != nil {
				o.Old = fsm.read(o.Key) // a plausible expected value
			}
		}
		call := c.clock.Add(1)
		out, record := c.do(rng, o)
		ret := c.clock.Add(1)
		if !record {
			continue
		}
		if o.Kind == "read" || o.Kind == "readindex" {
			o.Kind = "get"
		}
		hist = append(hist, porcupine.Operation{ClientId: id, Input: o, Call: call, Output: out, Return: ret})
	}
}

// do runs one operation; record is false when it certainly had no effect
// and returned nothing worth checking.
func (c *cluster) do(rng *rand.Rand, o op) (out kvOutput, record bool) {
	if o.Kind == "readindex" && !c.opts.StaleReads {
		r, fsm := c.anyNode(rng)
		if r == nil {
			return out, false
		}
		return c.readIndexRead(r, fsm, o.Key)
	}
	if (o.Kind == "read" || o.Kind == "readindex") && c.opts.StaleReads {
		if fsm := c.anyFSM(rng); fsm != nil {
			return kvOutput{result: result{Value: fsm.read(o.Key)}}, true
		}
		return out, false
	}
	r, fsm := c.leaderOrAny(rng)
	if r == nil {
		return out, false
	}
	if o.Kind == "read" {
		if err := r.VerifyLeader().Error(); err != nil {
			return out, false
		}
		idx := r.CommitIndex()
		for deadline := time.Now().Add(time.Second); r.AppliedIndex() < idx; {
			if time.Now().After(deadline) {
				return out, false
			}
			time.Sleep(time.Millisecond)
		}
		return kvOutput{result: result{Value: fsm.read(o.Key)}}, true
	}
	f := r.Apply(mustJSON(o), 500*time.Millisecond)
	err, waited := c.waitFuture(f)
	if !waited {
		return kvOutput{Unknown: true}, true // the client gave up waiting
	}
	if err == nil {
		res, ok := f.Response().(result)
		if !ok {
			c.violation("apply %s answered %v", o.ID, f.Response())
			return out, false
		}
		return kvOutput{result: res}, true
	}
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return out, false // never entered the log
	}
	if o.Kind == "get" {
		return out, false // a read with no answer constrains nothing
	}
	return kvOutput{Unknown: true}, true
}

// waitFuture waits for f as a client with a deadline does: in the targeted
// clock schedules, a client gives up after 20ms (a write to a deposed leader on a
// slow clock would otherwise hold it past the window the control needs its
// reads in), and the write's outcome stays unknown; otherwise it waits for
// the answer. Every future resolves by the end of the run.
func (c *cluster) waitFuture(f raft.Future) (err error, waited bool) {
	if c.opts.Clocks == ClocksWithinDrift {
		return f.Error(), true
	}
	done := make(chan error, 1)
	c.abandoned.Add(1)
	go func() { defer c.abandoned.Done(); done <- f.Error() }()
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	select {
	case err := <-done:
		return err, true
	case <-t.C:
		return nil, false
	}
}

// checkSafety checks, over every FSM incarnation: state machine safety (no
// index applied with two different entries), no request applied twice,
// every acknowledged write applied, and log matching over the final logs.
func (c *cluster) checkSafety(hist [][]porcupine.Operation) {
	at := map[uint64]appliedEntry{}
	where := map[string]uint64{}
	for _, f := range c.fsms {
		for _, e := range f.appliedEntries() {
			if prev, ok := at[e.Index]; ok && (prev.Term != e.Term || prev.Data != e.Data) {
				c.violation("state machine safety: index %d applied as %q (term %d) and %q (term %d)",
					e.Index, prev.Data, prev.Term, e.Data, e.Term)
				continue
			}
			at[e.Index] = e
			var o op
			if json.Unmarshal([]byte(e.Data), &o) == nil {
				if idx, ok := where[o.ID]; ok && idx != e.Index {
					c.violation("request %s applied twice, at %d and %d", o.ID, idx, e.Index)
				}
				where[o.ID] = e.Index
			}
		}
	}
	for _, h := range hist {
		for _, o := range h {
			in := o.Input.(op)
			if in.Kind == "get" || o.Output.(kvOutput).Unknown {
				continue
			}
			if _, ok := where[in.ID]; !ok {
				c.violation("acknowledged write %s (%s %s) was never applied", in.ID, in.Kind, in.Key)
			}
		}
	}
	// Log matching: entries at the same index and term are the same.
	type key struct{ index, term uint64 }
	seen := map[key]string{}
	for _, n := range c.nodes {
		first, _ := n.disk.FirstIndex()
		last, _ := n.disk.LastIndex()
		for i := first; i <= last && last > 0; i++ {
			var l raft.Log
			if err := n.disk.GetLog(i, &l); err != nil {
				if !errors.Is(err, raft.ErrLogNotFound) { // gaps: see diskStore.crash
					c.violation("log of %s: entry %d: %v", n.id, i, err)
				}
				continue
			}
			k := key{l.Index, l.Term}
			d := fmt.Sprintf("%d/%x", l.Type, l.Data)
			if prev, ok := seen[k]; ok && prev != d {
				c.violation("log matching: index %d term %d differs between logs", l.Index, l.Term)
			}
			seen[k] = d
		}
	}
}

// Check runs porcupine on the history, per key, within timeout. It
// returns porcupine's result and writes the visualization to htmlPath
// when the history is not linearizable (if htmlPath is not empty).
func (r *Report) Check(timeout time.Duration, htmlPath string) (porcupine.CheckResult, error) {
	res, info := porcupine.CheckOperationsVerbose(kvModel, r.history, timeout)
	if res == porcupine.Illegal && htmlPath != "" {
		if err := porcupine.VisualizePath(kvModel, info, htmlPath); err != nil {
			return res, fmt.Errorf("fuzzy: write visualization: %w", err)
		}
	}
	return res, nil
}

// Summary is a one-line account of the run.
func (r *Report) Summary() string {
	kinds := describeOps(r.history)
	return fmt.Sprintf("seed %d: %d ops (%s; %d unknown), %d elections, %d crashes, %d membership changes (%d joint, %d done), %d user restores, %d snapshot restores, %d messages (%d lost, %d duplicated), %d violations",
		r.Seed, r.Ops, kinds, r.Unknown, r.Elections, r.Crashes, r.Changes, r.JointChanges, r.JointDone, r.UserRestores, r.Restores,
		r.Messages, r.Dropped, r.Duplicated, len(r.Violations))
}
