package daemon

import "github.com/btslave/btslave/internal/api"

// friendsHelp is the status's friends part: who helps our master and how
// much arrived, whose masters we help; nil when [friends] is off.
func (a *App) friendsHelp() *api.FriendsHelp {
	p := a.friends
	if p == nil {
		return nil
	}
	fh := &api.FriendsHelp{HelpedBy: []api.HelpIn{}, Helping: []api.HelpOut{}}
	for _, ar := range p.meter.Arrivals() {
		in := api.HelpIn{InfoHash: ar.InfoHash, Since: ar.Since, Arrived: int64(ar.Arrived), Credited: int64(ar.Credited)}
		for _, f := range ar.Friends {
			in.Friends = append(in.Friends, api.HelpFriend{Friend: f.Friend.String(), Credited: int64(f.Credited)})
		}
		fh.HelpedBy = append(fh.HelpedBy, in)
	}
	for _, h := range p.svc.Helping() {
		fh.Helping = append(fh.Helping, api.HelpOut{Friend: h.Friend.String(), InfoHash: h.InfoHash, Since: h.Since, Sent: h.Sent, Credited: h.Credited})
	}
	return fh
}
